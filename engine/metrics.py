"""Operational metrics of the engine, read from the database at scrape time, in Prometheus' data model.

Every number comes from the database, so every API process answers a scrape with the same values whichever
worker did the work.  Each query is a COUNT or MIN over an index range, or reads a small table, so a scrape
stays cheap however many instances and wake-ups there are; each source names the index it walks.  A source
is a function ``(connection, now) -> metric families``; ``collect`` runs several in one read transaction of
the caller's, and ``exposition`` turns the result into the Prometheus text format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from . import tables as t

# (connection, now) -> metric families.  ``now`` is the engine clock's time, timezone-aware UTC.
Source = Callable[[Connection, datetime], Iterable[Metric]]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TIMER_KINDS = ("timer", "retry")  # always reported, 0 when none, so that alerts have a series to watch
# Finished instances (completed, cancelled) are not counted: that range only grows, and is not operations'.
LIVE_STATUSES = ("running", "incident")


def timer_metrics(conn: Connection, now: datetime) -> list[Metric]:
    """Pending wake-ups (BPMN timers and service retries) by kind: how many, how many are due but not fired
    yet, how late the oldest due one is, and how many a worker holds right now.

    Walks ``ix_timers_kind_due_at`` (pending) and the ``due_at <= now`` range of ``ix_timers_due_at`` (the
    rest).  Workers only lease due wake-ups (``UnitOfWork.claim_due_timers``), so leases are counted there.
    """
    c = t.timers.c
    pending = {kind: count for kind, count in conn.execute(select(c.kind, func.count()).group_by(c.kind))}
    due_query = (
        select(c.kind, func.count(), func.min(c.due_at), func.count(case((c.lease_until > now, 1))))
        .where(c.due_at <= now)
        .group_by(c.kind)
    )
    due = {kind: (count, oldest, leased) for kind, count, oldest, leased in conn.execute(due_query)}
    families = (
        GaugeMetricFamily("motcua_timers_pending", "Pending wake-ups, by kind.", labels=["kind"]),
        GaugeMetricFamily(
            "motcua_timers_due",
            "Wake-ups whose due time has passed but that have not fired yet, by kind.",
            labels=["kind"],
        ),
        GaugeMetricFamily(
            "motcua_timer_oldest_due_lag_seconds",
            "Seconds since the due time of the oldest due but unfired wake-up, by kind (0 when none is due).",
            labels=["kind"],
        ),
        GaugeMetricFamily(
            "motcua_timers_leased",
            "Due wake-ups a worker has claimed and holds (lease not run out), by kind.",
            labels=["kind"],
        ),
    )
    for kind in sorted({*TIMER_KINDS, *pending, *due}):
        count, oldest, leased = due.get(kind, (0, None, 0))
        lag = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        for family, value in zip(families, (pending.get(kind, 0), count, lag, leased), strict=True):
            family.add_metric([kind], value)
    return list(families)


# (metric name without _total, job_runs column, help)
_JOB_COUNTERS = (
    ("motcua_job_runs", "runs", "Runs of a scheduler job by one worker process."),
    ("motcua_job_items", "items", "Items (wake-ups, deliveries, dossiers, claims) a job has handled."),
    ("motcua_job_failures", "failures", "Runs of a job that ended in an error."),
)
_JOB_GAUGES: tuple[tuple[str, str, Callable[[Any], float | None]], ...] = (
    (
        "motcua_job_last_run_timestamp_seconds",
        "Unix time at which the job's last run finished.",
        lambda row: row.last_finished_at.timestamp() if row.last_finished_at else None,
    ),
    (
        "motcua_job_last_duration_seconds",
        "How long the job's last run took, in seconds.",
        lambda row: _seconds(row.last_duration_ms),
    ),
    (
        "motcua_job_last_lag_seconds",
        "Lag the job's last run recorded, in seconds: for fire_timers and run_retries, how long after "
        "their due time the wake-ups it fired were fired.",
        lambda row: _seconds(row.last_lag_ms),
    ),
    (
        "motcua_job_max_lag_seconds",
        "Largest lag the job has recorded on this worker since its job_runs row was created, in seconds.",
        lambda row: _seconds(row.max_lag_ms),
    ),
)


def _seconds(milliseconds: float | None) -> float | None:
    return milliseconds / 1000.0 if milliseconds is not None else None


def job_metrics(conn: Connection, now: datetime) -> list[Metric]:
    """What each scheduler job of each worker process did (the ``job_runs`` table: one row per worker and
    job).  Gauges of a job that has not reported the value yet are left out rather than reported as 0."""
    labels = ["worker", "job"]
    counters = [CounterMetricFamily(name, text, labels=labels) for name, _, text in _JOB_COUNTERS]
    gauges = [GaugeMetricFamily(name, text, labels=labels) for name, text, _ in _JOB_GAUGES]
    query = select(t.job_runs).order_by(t.job_runs.c.worker, t.job_runs.c.job)
    for row in conn.execute(query):
        key = [row.worker, row.job]
        for family, (_, column, _) in zip(counters, _JOB_COUNTERS, strict=True):
            family.add_metric(key, getattr(row, column))
        for gauge, (_, _, read) in zip(gauges, _JOB_GAUGES, strict=True):
            value = read(row)
            if value is not None:
                gauge.add_metric(key, value)
    return [*counters, *gauges]


def instance_metrics(conn: Connection, now: datetime) -> list[Metric]:
    """Live instances by status (``ix_instances_status``), open incidents and claimed tasks.

    Open incidents are counted over the partial index ``ix_incidents_open`` (resolved ones are not read).
    """
    c = t.instances.c
    instances = GaugeMetricFamily(
        "motcua_instances",
        "Instances not finished yet, by status (running, incident).",
        labels=["status"],
    )
    for status in LIVE_STATUSES:
        instances.add_metric([status], _count(conn, t.instances, c.status == status))
    incidents = GaugeMetricFamily(
        "motcua_incidents_open", "Incidents (tasks that failed for good) not resolved yet."
    )
    incidents.add_metric([], _count(conn, t.incidents, t.incidents.c.resolved_at.is_(None)))
    claims = GaugeMetricFamily("motcua_task_claims", "Ready user tasks an official has claimed.")
    claims.add_metric([], _count(conn, t.task_claims))
    return [instances, incidents, claims]


def _count(conn: Connection, table: Any, *conditions: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(*conditions)).scalar_one())


ENGINE_SOURCES: tuple[Source, ...] = (timer_metrics, job_metrics, instance_metrics)


def collect(conn: Connection, now: datetime, sources: Sequence[Source] = ENGINE_SOURCES) -> list[Metric]:
    """Return the metric families of ``sources``, read through ``conn`` at ``now``.

    Args:
        conn: a connection, ideally in one read transaction so that the numbers are of one moment.
        now: the engine clock's time: lags and due counts are measured against it.
        sources: what to read (default: the engine's own metrics).
    """
    return [metric for source in sources for metric in source(conn, now)]


class _Snapshot:
    """A prometheus_client collector that yields metric families already read."""

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def exposition(metrics: Sequence[Metric]) -> bytes:
    """Return ``metrics`` in the Prometheus text format 0.0.4 (served as ``CONTENT_TYPE``)."""
    return generate_latest(_Snapshot(metrics))
