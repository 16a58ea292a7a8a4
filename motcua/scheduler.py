"""Background work: the named APScheduler jobs that keep processes moving, run by any number of workers.

The database says what is due (indexed due times on ``timers``, ``webhook_deliveries``, ``dossiers`` and
``task_claims``), never the scheduler's memory: each job claims due rows with row locks and leases (see
``Engine.fire_due_timers``), so that N workers on N machines do each piece of work once, and a worker killed
at any moment leaves nothing lost.  APScheduler only decides when each process looks.

The scheduler runs inside each ``motcua serve`` worker (unless ``MOTCUA_SCHEDULER=off``) and alone as
``motcua worker``.  Every run of a job is logged, and its totals are kept per worker and job in
``job_runs`` (read by ``/metrics``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import ValidationError
from engine.facade import Engine
from engine.tables import job_runs

from .settings import Settings

log = logging.getLogger("motcua.worker")

BATCH = 50  # wake-ups claimed per statement
HEARTBEAT = timedelta(seconds=30)  # an idle job still updates its job_runs row this often


@dataclass
class Outcome:
    """What one run of a job did."""

    items: int = 0
    lags: list[float] = field(default_factory=list)  # seconds between due and done, per item
    detail: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """Return the run in a few words for the log."""
        parts = [f"{count} {what}" for what, count in sorted(self.detail.items()) if count]
        if self.lags:
            ordered = sorted(self.lags)
            p50 = ordered[len(ordered) // 2]
            parts.append(f"lag p50 {p50 * 1000:.0f} ms max {ordered[-1] * 1000:.0f} ms")
        return ", ".join(parts) or "nothing to do"


@dataclass
class JobStats:
    """A job's totals in this worker process."""

    runs: int = 0
    items: int = 0
    failures: int = 0
    last_written: datetime | None = None


@dataclass(frozen=True)
class Job:
    """A named job: what it does, and how often a worker looks."""

    name: str
    run: Callable[[], Outcome]
    every: float


def default_worker_id() -> str:
    """Return a name for this process that no other worker shares: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Faults:
    """Deliberate crashes for the crash-safety tests, from ``MOTCUA_FAULTS`` (never set in production).

    ``kill_after_claims=N``: SIGKILL this process once it has claimed N wake-ups, before firing them.
    ``kill_in_transaction=N``: SIGKILL it inside the transaction of its N-th firing, before the commit.
    """

    def __init__(self, spec: str | None) -> None:
        self.kill_after_claims = 0
        self.kill_in_transaction = 0
        self._claimed = 0
        self._fired = 0
        for part in (spec or "").split(","):
            if not part.strip():
                continue
            name, _, value = part.partition("=")
            if (
                name.strip() not in ("kill_after_claims", "kill_in_transaction")
                or not value.strip().isdigit()
            ):
                raise ValidationError(f"Unknown fault {part.strip()!r}", {"MOTCUA_FAULTS": ["unknown fault"]})
            setattr(self, name.strip(), int(value))

    def on_claimed(self, rows: list[dict[str, Any]]) -> None:
        """Count claimed wake-ups; die when the limit is reached."""
        self._claimed += len(rows)
        if self.kill_after_claims and self._claimed >= self.kill_after_claims:
            _die()

    def install(self, engine: Engine) -> None:
        """Hook the in-transaction crash into the engine's listeners."""
        if not self.kill_in_transaction:
            return

        def listener(_conn: Any, change: Any) -> None:
            if any(entry.get("action") == "timer_fired" for entry in change.audit):
                self._fired += 1
                if self._fired >= self.kill_in_transaction:
                    _die()

        engine.add_listener(listener)


def _die() -> None:
    import signal

    logging.shutdown()
    os.kill(os.getpid(), signal.SIGKILL)


class Scheduler:
    """The background jobs of one process, on APScheduler."""

    JOBS = (
        "fire_timers",
        "run_retries",
        "deliver_webhooks",
        "dossier_deadlines",
        "release_claims",
        "reconcile_payments",
    )

    def __init__(
        self,
        engine: Engine,
        dossiers: Any,
        settings: Settings,
        *,
        worker: str | None = None,
        jobs: list[str] | None = None,
        faults: Faults | None = None,
        payments: Any = None,
    ) -> None:
        self.engine = engine
        self.dossiers = dossiers
        self.payments = payments  # built from the settings when the job first runs (``_reconcile_payments``)
        self.settings = settings
        self.worker = worker or default_worker_id()
        self.faults = faults or Faults(None)
        self.faults.install(engine)
        self.tick = settings.scheduler_tick
        self._stopping = threading.Event()
        self._scheduler: BaseScheduler | None = None
        self._lock = threading.Lock()
        every = {
            "fire_timers": self.tick,
            "run_retries": self.tick,
            "deliver_webhooks": max(self.tick, 2.0),
            "dossier_deadlines": max(self.tick, 15.0),
            "release_claims": max(self.tick, 60.0),
            "reconcile_payments": max(self.tick, 60.0),
        }
        chosen = jobs or list(self.JOBS)
        unknown = [name for name in chosen if name not in every]
        if unknown:
            raise ValidationError(
                f"Unknown job(s): {', '.join(unknown)}; the jobs are {', '.join(self.JOBS)}",
                {"jobs": [f"unknown: {name}" for name in unknown]},
            )
        self.jobs = {name: Job(name, getattr(self, f"_{name}"), every[name]) for name in chosen}
        self.stats = {name: JobStats() for name in chosen}

    # -- running --------------------------------------------------------------------------------
    def start(self, *, blocking: bool = False) -> None:
        """Schedule every job and start; ``blocking`` runs in this thread until ``stop``."""
        options = {
            "timezone": UTC,
            "executors": {"default": ThreadPoolExecutor(max_workers=len(self.jobs) + 1)},
            "job_defaults": {"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        }
        self._scheduler = BlockingScheduler(**options) if blocking else BackgroundScheduler(**options)
        first = datetime.now(UTC)
        for job in self.jobs.values():
            self._scheduler.add_job(
                self.run_job,
                "interval",
                args=[job.name],
                id=job.name,
                name=job.name,
                seconds=job.every,
                next_run_time=first,
                # fire_timers works for a whole tick: its next run may start while this one returns, so
                # that no timer waits for the gap (two runs never fire the same timer: claims).
                max_instances=2 if job.name == "fire_timers" else 1,
            )
        log.info("worker %s starting jobs %s (tick %.2f s)", self.worker, ", ".join(self.jobs), self.tick)
        self._scheduler.start()

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling; with ``wait``, let running jobs finish their current item first."""
        self._stopping.set()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        log.info("worker %s stopped", self.worker)

    def run_job(self, name: str) -> Outcome:
        """Run one job once: log it and keep its totals (in this process and in ``job_runs``)."""
        job = self.jobs[name]
        started = datetime.now(UTC)
        clock = time.perf_counter()
        error: str | None = None
        outcome = Outcome()
        try:
            outcome = job.run()
        except Exception as exc:  # a job must never kill the scheduler: log, count, try next tick
            error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", name)
        duration = time.perf_counter() - clock
        stats = self.stats[name]
        stats.runs += 1
        stats.items += outcome.items
        stats.failures += error is not None
        level = logging.INFO if outcome.items or error else logging.DEBUG
        log.log(level, "job %s: %s in %.0f ms", name, error or outcome.summary(), duration * 1000)
        if outcome.items or error or stats.last_written is None or started - stats.last_written > HEARTBEAT:
            self._record(name, started, duration, outcome, error)
            stats.last_written = started
        return outcome

    def run_all_once(self) -> dict[str, Outcome]:
        """Run every job once, in order (``motcua worker --once``)."""
        return {name: self.run_job(name) for name in self.jobs}

    # -- the jobs -------------------------------------------------------------------------------
    def _fire_timers(self) -> Outcome:
        """Fire due BPMN timers until the tick ends, sleeping until the next one when it is that close.

        A timer already pending fires within milliseconds of its time; one added meanwhile by another
        process is seen at the next tick at the latest.
        """
        outcome = Outcome(detail={"fired": 0, "skipped": 0, "failed": 0})
        ends = time.monotonic() + self.tick  # the next run (allowed to overlap this one's end) takes over
        while not self._stopping.is_set():
            claimed = sum(outcome.detail.values())
            self._fire(outcome, "timer")
            claimed = sum(outcome.detail.values()) - claimed
            left = ends - time.monotonic()
            if left <= 0.005:
                break
            now = self.engine.clock.now()
            with self.engine.store.unit_of_work(write=False) as uow:
                upcoming = uow.next_due("timer", now=now)  # the ones other workers hold are theirs
            if upcoming is None:
                break
            wait = (upcoming - now).total_seconds()
            if wait > left:
                break
            if wait <= 0 and not claimed:
                # Claimable a moment ago, gone when claimed: another worker was quicker.  Look again after a
                # short pause rather than at once, so that a race never turns into a busy loop.
                wait = min(0.05, left)
            if wait > 0 and self._stopping.wait(wait):
                break
        return outcome

    def _run_retries(self) -> Outcome:
        outcome = Outcome(detail={"fired": 0, "skipped": 0, "failed": 0})
        self._fire(outcome, "retry")
        return outcome

    def _fire(self, outcome: Outcome, kind: str) -> None:
        """Claim and fire batches of due wake-ups of one kind until none is due (or we are stopping)."""
        for _ in range(1000):
            results = self.engine.fire_due_timers(
                kind=kind,
                worker=self.worker,
                lease_seconds=self.settings.timer_lease,
                limit=BATCH,
                on_claimed=self.faults.on_claimed,
            )
            for result in results:
                verdict = result["outcome"].split(":")[0]
                outcome.detail[verdict] = outcome.detail.get(verdict, 0) + 1
                if verdict == "fired":
                    outcome.items += 1
                    outcome.lags.append((result["fired_at"] - result["due_at"]).total_seconds())
            if len(results) < BATCH or self._stopping.is_set():
                return

    def _deliver_webhooks(self) -> Outcome:
        from dossiers.webhooks import deliver_due

        results = deliver_due(self.engine.store, self.engine.clock)
        detail: dict[str, int] = {}
        for result in results:
            detail[result["outcome"]] = detail.get(result["outcome"], 0) + 1
        return Outcome(items=len(results), detail=detail)

    def _dossier_deadlines(self) -> Outcome:
        marked: dict[str, int] = self.dossiers.mark_deadlines()
        return Outcome(items=sum(marked.values()), detail=dict(marked))

    def _release_claims(self) -> Outcome:
        released = self.engine.release_stale_claims(timedelta(hours=self.settings.claim_ttl_hours))
        return Outcome(items=len(released), detail={"released": len(released)})

    def _reconcile_payments(self) -> Outcome:
        """Settle online payments whose IPN never came, asking the provider (``PaymentService.reconcile``)."""
        if self.payments is None:
            from .wiring import build_payments

            self.payments = build_payments(self.engine, self.dossiers, self.settings)
        settled: dict[str, int] = self.payments.reconcile()
        return Outcome(items=sum(n for what, n in settled.items() if what != "unreachable"), detail=settled)

    # -- bookkeeping ----------------------------------------------------------------------------
    def _record(
        self, name: str, started: datetime, duration: float, outcome: Outcome, error: str | None
    ) -> None:
        stats = self.stats[name]
        lags = outcome.lags
        values = {
            "worker": self.worker,
            "job": name,
            "runs": stats.runs,
            "items": stats.items,
            "failures": stats.failures,
            "last_started_at": started,
            "last_finished_at": started + timedelta(seconds=duration),
            "last_duration_ms": round(duration * 1000, 3),
            "last_items": outcome.items,
            "last_lag_ms": round(sorted(lags)[len(lags) // 2] * 1000, 3) if lags else None,
            "max_lag_ms": round(max(lags) * 1000, 3) if lags else None,
            "last_error": error,
        }
        try:
            with self.engine.store.unit_of_work() as uow:
                dialect = uow.conn.dialect.name
                insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
                statement = insert(job_runs).values(**values)
                changed = {key: value for key, value in values.items() if key not in ("worker", "job")}
                uow.conn.execute(
                    statement.on_conflict_do_update(index_elements=["worker", "job"], set_=changed)
                )
        except Exception:  # bookkeeping must not stop the work itself
            log.warning("could not record the run of job %s", name, exc_info=True)


def build_scheduler(
    settings: Settings, *, worker: str | None = None, jobs: list[str] | None = None, faults: str | None = None
) -> Scheduler:
    """Return a scheduler on a freshly wired engine and dossier service (for ``motcua worker``)."""
    from .wiring import build_dossiers, build_engine

    engine = build_engine(settings)
    dossiers = build_dossiers(engine, settings)
    return Scheduler(engine, dossiers, settings, worker=worker, jobs=jobs, faults=Faults(faults))
