"""Deadlines: find the dossiers about to be late and the late ones, and mark each once.

A dossier is *due soon* when at most ``due_soon_working_hours`` of working time (the working calendar with its
overrides) is left before its due date: the agency must now send the applicant the apology letter with a new
date (phiếu xin lỗi và hẹn lại ngày trả kết quả) before the date passes.  It is *overdue* once the due date
has passed.  Only running dossiers count: received, not finished, and not paused waiting for the applicant
(while paused the due date keeps moving later by the time spent waiting).

``mark_deadlines`` runs every scheduler tick.  Each mark is set once, in one short transaction that claims
the rows, records the mark in the instance's audit trail (actor "scheduler") and enqueues its webhook event;
any number of workers may run it at once.  When a due date moves later (an apology, the end of a pause) the
marks it no longer deserves are cleared (``cleared_marks``), so that the new date is watched afresh.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.store import Store

from . import store as queries
from . import webhooks
from .calendar import WorkingCalendar
from .status import describe

#: The default window: one working day (8 working hours) before the due date.
DUE_SOON_WORKING_HOURS = 8.0
ACTOR = "scheduler"
_TICK = timedelta(microseconds=1)
_TICK_HOURS = _TICK / timedelta(hours=1)


@dataclass(frozen=True)
class Mark:
    """One kind of deadline mark: its column, its webhook event and its audit action."""

    name: str
    column: str
    event: str
    action: str


DUE_SOON = Mark("due_soon", "due_soon_at", webhooks.DUE_SOON, "dossier_due_soon")
OVERDUE = Mark("overdue", "overdue_at", webhooks.OVERDUE, "dossier_overdue")


def due_soon_limit(calendar: WorkingCalendar, now: datetime, hours: float) -> datetime:
    """Return the latest due instant that leaves at most ``hours`` of working time from ``now``.

    A due date at or before it is due soon, so the query can use the index on ``dossiers.due_at``.

    Raises:
        ValidationError: ``now`` is naive or ``hours`` negative (from the calendar).
    """
    end = calendar.add_working_hours(now, hours)
    # The working time ends exactly at a window's end (17:00, 11:30); a due date in the break that follows
    # (until the next window opens) leaves the same working time, so step over the break.
    return calendar.add_working_hours(end, _TICK_HOURS) - _TICK


def cleared_marks(
    calendar: WorkingCalendar, now: datetime, due_at: datetime, hours: float = DUE_SOON_WORKING_HOURS
) -> dict[str, None]:
    """Return the marks a dossier loses when its due date moves to ``due_at``: overdue unless the new date
    has passed too, due soon unless it is still within ``hours`` working hours (as column updates)."""
    cleared: dict[str, None] = {}
    if due_at >= now:
        cleared[OVERDUE.column] = None
    if due_at > due_soon_limit(calendar, now, hours):
        cleared[DUE_SOON.column] = None
    return cleared


def flags(
    due_soon_at: datetime | None, overdue_at: datetime | None, *, finished: bool, apologised: bool
) -> dict[str, bool]:
    """Return the deadline flags of a dossier: ``due_soon`` (about to be late, not late yet), ``overdue``,
    and ``apology_required`` (either, and no apology letter yet); all false once it is finished."""
    overdue = not finished and overdue_at is not None
    due_soon = not finished and not overdue and due_soon_at is not None
    return {
        "due_soon": due_soon,
        "overdue": overdue,
        "apology_required": (due_soon or overdue) and not apologised,
    }


def dossier_flags(dossier: Mapping[str, Any]) -> dict[str, bool]:
    """Return :func:`flags` of a dossier row."""
    return flags(
        dossier.get("due_soon_at"),
        dossier.get("overdue_at"),
        finished=dossier.get("finished_at") is not None,
        apologised=dossier.get("apology") is not None,
    )


def mark_deadlines(
    store: Store, now: datetime, *, hours: float = DUE_SOON_WORKING_HOURS, limit: int = 200
) -> dict[str, int]:
    """Mark up to ``limit`` dossiers due soon and up to ``limit`` overdue, each once, as of ``now``.

    A first read-only look decides whether there is anything to do, so an idle tick takes no write lock.

    Args:
        store: the database.
        now: the current time (timezone-aware).
        hours: the due-soon window in working hours.
        limit: at most this many dossiers of each kind per call; the rest wait for the next call.

    Returns:
        How many dossiers were marked: ``{"due_soon": n, "overdue": m}``.

    Raises:
        ConflictError: the database refused a transaction because of a concurrent writer (SQLite).
    """
    with store.unit_of_work(write=False) as uow:
        calendar = WorkingCalendar(queries.calendar_overrides(uow.conn))
        ranges: list[tuple[Mark, dict[str, Any]]] = [
            (DUE_SOON, {"due_from": now, "due_through": due_soon_limit(calendar, now, hours)}),
            (OVERDUE, {"due_before": now}),
        ]
        todo = [(m, r) for m, r in ranges if queries.unmarked_due(uow.conn, m.column, **r, limit=1)]
    counts = {mark.name: 0 for mark, _ in ranges}
    for mark, due in todo:
        with store.unit_of_work() as uow:
            claimed = queries.unmarked_due(uow.conn, mark.column, **due, limit=limit, claim=True)
            marked = set(queries.set_mark(uow.conn, mark.column, [d["code"] for d in claimed], now))
            rows = [d for d in claimed if d["code"] in marked]
            uow.add_audit(_audit(mark, d, now, calendar) for d in rows if d["instance_id"] is not None)
            for dossier in rows:
                payload = _payload(mark, dossier, now, calendar)
                webhooks.enqueue(uow.conn, mark.event, payload, now, dossier_code=dossier["code"])
        counts[mark.name] = len(rows)
    return counts


def _hours_left(calendar: WorkingCalendar, now: datetime, due_at: datetime) -> float:
    return round(calendar.working_seconds_between(now, due_at) / 3600, 2)


def _payload(
    mark: Mark, dossier: Mapping[str, Any], now: datetime, calendar: WorkingCalendar
) -> dict[str, Any]:
    payload = {
        "code": dossier["code"],
        "procedure_code": dossier["procedure_code"],
        "status": describe(dossier["status"]),
        "due_at": dossier["due_at"].astimezone(UTC).isoformat(),
        "at": now.astimezone(UTC).isoformat(),
    }
    if mark is DUE_SOON:
        payload["working_hours_left"] = _hours_left(calendar, now, dossier["due_at"])
    return payload


def _audit(
    mark: Mark, dossier: Mapping[str, Any], now: datetime, calendar: WorkingCalendar
) -> dict[str, Any]:
    details: dict[str, Any] = {"dossier_code": dossier["code"], "due_at": dossier["due_at"].isoformat()}
    if mark is DUE_SOON:
        details["working_hours_left"] = _hours_left(calendar, now, dossier["due_at"])
    return {
        "instance_id": dossier["instance_id"],
        "task_id": None,
        "element_id": None,
        "action": mark.action,
        "actor": ACTOR,
        "at": now,
        "details": json.dumps(details, ensure_ascii=False),
    }
