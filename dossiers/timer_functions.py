"""The working calendar in BPMN timer expressions: ``working_days(n)``, ``working_hours(n)``, ``due_date()``.

Registered on the engine by ``DossierService`` (``Engine.add_timer_functions``), so that an analyst can
write a boundary timer ``working_hours(4)`` (four working hours after the task was created) or a date timer
``due_date() - working_days(2)`` (two working days before the dossier is due).  The calendar is the one the
due dates use: Viet Nam's holidays plus the admin's overrides stored in the database.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from engine.errors import ScriptError
from engine.runtime import Instance
from engine.timer_specs import WorkingTime

from . import store
from .calendar import MAX_NON_WORKING_RUN, VN_TZ, WorkingCalendar
from .lifecycle import calendar_for, due_at_for

_ONE_DAY = timedelta(days=1)
# Larger amounts are mistakes, and walking the calendar day by day for them would hold a worker.
MAX_WORKING_DAYS = 2000
MAX_WORKING_HOURS = MAX_WORKING_DAYS * 8


def timer_functions(
    conn: Connection | None, instance: Instance | None, now: datetime
) -> dict[str, Callable[..., Any]]:
    """Return the calendar functions for the timer expressions of one instance, evaluated at ``now``.

    The calendar (with its database overrides) is read only when an expression uses it.
    """

    @functools.cache
    def calendar() -> WorkingCalendar:
        return calendar_for(conn) if conn is not None else WorkingCalendar()

    def working_days(n: int) -> WorkingTime:
        days = _count(n, "working_days", whole=True)
        return WorkingTime(
            f"working_days({n})", lambda moment, way: shift_days(calendar(), moment, days * way)
        )

    def working_hours(n: float) -> WorkingTime:
        hours = _count(n, "working_hours", whole=False)
        return WorkingTime(
            f"working_hours({n})", lambda moment, way: shift_hours(calendar(), moment, hours * way)
        )

    return {
        "working_days": working_days,
        "working_hours": working_hours,
        "due_date": lambda: dossier_due_at(conn, instance, now),
    }


def _count(n: Any, name: str, *, whole: bool) -> float:
    kinds = (int,) if whole else (int, float)
    most = MAX_WORKING_DAYS if whole else MAX_WORKING_HOURS
    if isinstance(n, bool) or not isinstance(n, kinds) or not math.isfinite(n) or not 0 <= n <= most:
        what = "a whole number" if whole else "a number"
        raise ScriptError(f"{name}(n) needs {what} from 0 to {most}, not {n!r}")
    return float(n)


def shift_days(calendar: WorkingCalendar, moment: datetime, days: float) -> datetime:
    """Return ``moment`` moved by ``days`` working days (back when negative), at the same local time.

    Each step goes to the next (or previous) working day, so Friday 15:00 plus one working day is Monday
    15:00, and Monday 10:00 minus one is the Friday before (holidays skipped).
    """
    local = moment.astimezone(calendar.tz)
    day = local.date()
    step = calendar.next_working_day if days >= 0 else functools.partial(previous_working_day, calendar)
    for _ in range(int(abs(days))):
        day = step(day)
    return datetime.combine(day, local.time(), tzinfo=calendar.tz)


def previous_working_day(calendar: WorkingCalendar, day: date) -> date:
    """Return the last working day strictly before ``day``.

    Raises:
        ScriptError: no working day within ``MAX_NON_WORKING_RUN`` days before it.
    """
    for _ in range(MAX_NON_WORKING_RUN + 1):
        day -= _ONE_DAY
        if calendar.is_working_day(day):
            return day
    raise ScriptError(f"no working day found before {day}: check the calendar overrides")


def shift_hours(calendar: WorkingCalendar, moment: datetime, hours: float) -> datetime:
    """Return the instant ``hours`` of working time after ``moment`` (before it when negative).

    Only the morning and afternoon windows of working days count (lunch, nights, weekends and holidays
    do not).
    """
    if hours >= 0:
        return calendar.add_working_hours(moment, hours)
    return _before(calendar, moment.astimezone(calendar.tz), timedelta(hours=-hours))


def _before(calendar: WorkingCalendar, end: datetime, amount: timedelta) -> datetime:
    """Walk back from ``end`` through the working windows until ``amount`` of working time is used."""
    remaining, day, cursor = amount, end.date(), end
    while remaining > timedelta(0):
        windows = calendar.hours.windows if calendar.is_working_day(day) else ()
        for start, finish in reversed(windows):
            begin = datetime.combine(day, start, tzinfo=calendar.tz)
            stop = min(cursor, datetime.combine(day, finish, tzinfo=calendar.tz))
            if stop <= begin:
                continue
            if remaining <= stop - begin:
                return stop - remaining
            remaining -= stop - begin
        day = previous_working_day(calendar, day)
        cursor = datetime.combine(day + _ONE_DAY, time(0), tzinfo=calendar.tz)
    return end


def dossier_due_at(conn: Connection | None, instance: Instance | None, now: datetime) -> datetime:
    """Return the due date and time of the instance's dossier (its business key is the dossier code).

    A dossier not received yet has no due date: it is computed as if the dossier were received ``now``.

    Raises:
        ScriptError: the instance belongs to no dossier.
    """
    code = instance.business_key if instance is not None else None
    dossier = store.get_dossier(conn, code) if conn is not None and code else None
    if conn is None or dossier is None:
        raise ScriptError(f"due_date() needs the instance of a dossier; there is no dossier {code!r}")
    due = dossier["due_at"]
    if due is None:
        procedure_code = dossier["procedure_code"]
        procedure = store.procedure_terms(conn, procedure_code) or {"code": procedure_code}
        due = due_at_for(conn, procedure, dossier["channel"], now)
    local: datetime = due.astimezone(VN_TZ)
    return local
