"""The working-day calendar of Viet Nam: due dates, working hours and pauses (pure, no I/O).

Working days are Monday to Friday minus the public holidays of ``holidays.country_holidays("VN")`` (lunar
dates, compensatory days and the swaps announced up to the package's release), plus the make-up working
weekend days the package knows, corrected by an admin-editable :class:`CalendarOverrides` table for what the
government announces after the package was released.

Counting follows Civil Code 2015 art. 147: the day of (deemed) receipt is not counted, and a dossier
received at or after the cut-off time (15:00) counts as received on the next working day.  Day boundaries
are taken in Asia/Ho_Chi_Minh; every datetime passed in must be timezone-aware.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

from engine.errors import ValidationError

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_CUTOFF = time(15, 0)
#: The name :meth:`WorkingCalendar.holiday_name` gives a day off that only the override table knows.
EXTRA_DAY_OFF_NAME = "Ngày nghỉ theo thông báo của Chính phủ"
#: More consecutive non-working days than this means the override table is broken.
MAX_NON_WORKING_RUN = 366

Outcome = Literal["early", "on_time", "late"]
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)


@dataclass(frozen=True)
class CalendarOverrides:
    """The admin-editable table on top of the package, loaded by the caller from the database.

    Attributes:
        days_off: extra days off announced by the government (e.g. the weekday of a swap).
        working_days: make-up working days (usually Saturdays); they win over everything else.
    """

    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()


#: Announced swaps that ``holidays`` 0.109 does not carry (seed for the override table).
#: 2026 New Year: Official Letter 12729/VPCP-KGVX of 25/12/2025, civil servants off 1-4/1/2026,
#: Friday 2/1/2026 swapped with Saturday 10/1/2026.
ANNOUNCED_OVERRIDES = CalendarOverrides(
    days_off=frozenset({date(2026, 1, 2)}),
    working_days=frozenset({date(2026, 1, 10)}),
)


@dataclass(frozen=True)
class WorkingHours:
    """The office windows of a working day, for agencies that count in hours.

    Raises:
        ValidationError: if the windows are empty or out of order.
    """

    morning: tuple[time, time] = (time(7, 30), time(11, 30))
    afternoon: tuple[time, time] = (time(13, 0), time(17, 0))

    def __post_init__(self) -> None:
        (m_start, m_end), (a_start, a_end) = self.morning, self.afternoon
        if not m_start < m_end <= a_start < a_end:
            raise ValidationError(
                "working hours must be two ordered, non-empty windows",
                errors={"hours": [f"got morning {self.morning}, afternoon {self.afternoon}"]},
            )

    @property
    def windows(self) -> tuple[tuple[time, time], tuple[time, time]]:
        """Return the morning and afternoon windows in order."""
        return (self.morning, self.afternoon)

    @property
    def day_end(self) -> time:
        """Return the end of the working day (the end of the afternoon window)."""
        return self.afternoon[1]


@dataclass(frozen=True)
class _YearData:
    names: Mapping[date, str]
    weekend_workdays: frozenset[date]


@functools.lru_cache(maxsize=128)
def _year_data(year: int) -> _YearData:
    """Load one year of VN holidays (Vietnamese names) and the make-up weekend days the package knows."""
    table = holidays.country_holidays("VN", years=year, language="vi")
    workdays = frozenset(getattr(table, "weekend_workdays", ()))
    return _YearData(names=dict(table.items()), weekend_workdays=workdays)


_NO_OVERRIDES = CalendarOverrides()
_DEFAULT_HOURS = WorkingHours()


class WorkingCalendar:
    """Working days, due dates and working time in Viet Nam for one override table."""

    def __init__(
        self,
        overrides: CalendarOverrides = _NO_OVERRIDES,
        *,
        tz: ZoneInfo = VN_TZ,
        cutoff: time = DEFAULT_CUTOFF,
        hours: WorkingHours = _DEFAULT_HOURS,
        years: Iterable[int] | None = None,
    ) -> None:
        """Build a calendar.

        Args:
            overrides: extra days off and make-up working days on top of the package.
            tz: the zone in which days begin and end.
            cutoff: a dossier received at or after this local time counts as received the next working day.
            hours: the morning/afternoon windows used by the hour-based methods and by :meth:`due_at`.
            years: years to load eagerly; others are loaded (and cached) on first use.
        """
        self.overrides = overrides
        self.tz = tz
        self.cutoff = cutoff
        self.hours = hours
        for year in years or ():
            _year_data(year)

    # -- days ------------------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Tell whether ``day`` is a working day.

        Order: an override working day is working; an override day off is not; a weekend day is working
        only if the package lists it as a make-up day; a weekday is working unless it is a holiday.
        """
        if day in self.overrides.working_days:
            return True
        if day in self.overrides.days_off:
            return False
        if day.weekday() >= 5:
            # A swap may reach into the neighbouring year (e.g. 27/12/2014 for 2/1/2015).
            return any(day in _year_data(y).weekend_workdays for y in (day.year, day.year + 1))
        return day not in _year_data(day.year).names

    def holiday_name(self, day: date) -> str | None:
        """Return the Vietnamese name of the holiday on ``day``.

        Returns:
            The package's name (several joined by "; "), :data:`EXTRA_DAY_OFF_NAME` for a day off only the
            override table knows, or None for an ordinary day or an override working day.
        """
        if day in self.overrides.working_days:
            return None
        name = _year_data(day.year).names.get(day)
        if name is None and day in self.overrides.days_off:
            return EXTRA_DAY_OFF_NAME
        return name

    def next_working_day(self, day: date) -> date:
        """Return the first working day strictly after ``day``.

        Raises:
            ValidationError: if no working day follows within :data:`MAX_NON_WORKING_RUN` days.
        """
        return next(self._working_days_after(day))

    def working_days_between(self, start: date, end: date) -> int:
        """Count the working days in the half-open interval (start, end]; 0 if ``end <= start``."""
        count, day = 0, start + _ONE_DAY
        while day <= end:
            count += self.is_working_day(day)
            day += _ONE_DAY
        return count

    # -- due dates -------------------------------------------------------------------------------------

    def deemed_receipt(self, received_at: datetime) -> date:
        """Return the working day a dossier counts as received.

        Args:
            received_at: the aware instant of receipt.

        Returns:
            The local day itself if it is a working day and the local time is before the cut-off, else the
            next working day.

        Raises:
            ValidationError: if ``received_at`` is naive (field "received_at").
        """
        local = self._local(received_at, "received_at")
        day = local.date()
        if self.is_working_day(day) and local.time() < self.cutoff:
            return day
        return self.next_working_day(day)

    def due_date(self, received_at: datetime, working_days: int) -> date:
        """Return the due date of a procedure that takes ``working_days`` working days.

        The deemed receipt day is not counted (Civil Code art. 147); 0 days means the deemed receipt day.

        Raises:
            ValidationError: if ``received_at`` is naive or ``working_days`` is negative.
        """
        if working_days < 0:
            raise ValidationError(
                "the processing time cannot be negative", errors={"working_days": [str(working_days)]}
            )
        due = self.deemed_receipt(received_at)
        following = self._working_days_after(due)
        for _ in range(working_days):
            due = next(following)
        return due

    def due_at(self, received_at: datetime, working_days: int) -> datetime:
        """Return :meth:`due_date` at the end of the working day (17:00 local) as an aware datetime.

        Raises:
            ValidationError: as :meth:`due_date`.
        """
        return datetime.combine(self.due_date(received_at, working_days), self.hours.day_end, tzinfo=self.tz)

    def outcome(self, due_at: datetime, finished_at: datetime) -> Outcome:
        """Classify a finished dossier by local calendar day.

        Returns:
            "early" if finished on a day before the due date, "on_time" on the due date, "late" after it.

        Raises:
            ValidationError: if either datetime is naive.
        """
        due_day = self._local(due_at, "due_at").date()
        done_day = self._local(finished_at, "finished_at").date()
        if done_day < due_day:
            return "early"
        return "on_time" if done_day == due_day else "late"

    # -- working time ----------------------------------------------------------------------------------

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """Return the local instant ``hours`` of working time after ``start``.

        Only time inside the morning/afternoon windows of working days counts; an amount that ends exactly
        at the end of a window returns that end (e.g. 17:00), not the next morning.  0 hours returns
        ``start`` unchanged (in local time).

        Raises:
            ValidationError: if ``start`` is naive or ``hours`` is negative or not finite.
        """
        if not math.isfinite(hours) or hours < 0:
            raise ValidationError(
                "hours must be a finite, non-negative number", errors={"hours": [str(hours)]}
            )
        return self._add_working(self._local(start, "start"), timedelta(hours=hours))

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        """Return the working time, in seconds, inside the windows of working days between two instants.

        Returns:
            0.0 if ``end <= start``.

        Raises:
            ValidationError: if either datetime is naive.
        """
        begin, finish = self._local(start, "start"), self._local(end, "end")
        return self._working_between(begin, finish).total_seconds()

    def extend_for_pauses(
        self,
        due_at: datetime,
        pauses: Iterable[tuple[datetime, datetime | None]],
        now: datetime | None = None,
    ) -> datetime:
        """Move a due instant later by the working time spent paused.

        Overlapping pauses are merged so no time counts twice; an open pause (end None) counts until
        ``now`` (the current time if not given).  The paused working time is added after ``due_at`` inside
        the working windows, so a pause of two full working days moves the due date two working days.

        Returns:
            The new due instant in local time.

        Raises:
            ValidationError: if a datetime is naive or a pause ends before it starts.
        """
        base = self._local(due_at, "due_at")
        paused = sum(
            (self._working_between(a, b) for a, b in self._merged_pauses(pauses, now)),
            _ZERO,
        )
        return self._add_working(base, paused)

    # -- internals -------------------------------------------------------------------------------------

    def _local(self, moment: datetime, field: str) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValidationError(
                f"{field} must be a timezone-aware datetime",
                errors={field: ["naive datetime: give a time zone (e.g. Asia/Ho_Chi_Minh)"]},
            )
        return moment.astimezone(self.tz)

    def _working_days_after(self, day: date) -> Iterator[date]:
        run = 0
        while True:
            day += _ONE_DAY
            if self.is_working_day(day):
                run = 0
                yield day
                continue
            run += 1
            if run > MAX_NON_WORKING_RUN:
                raise ValidationError(
                    "no working day found: check the calendar overrides",
                    errors={"overrides": [f"more than {MAX_NON_WORKING_RUN} days off in a row from {day}"]},
                )

    def _windows(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(day):
            return []
        return [
            (datetime.combine(day, start, tzinfo=self.tz), datetime.combine(day, end, tzinfo=self.tz))
            for start, end in self.hours.windows
        ]

    def _add_working(self, start: datetime, amount: timedelta) -> datetime:
        if amount <= _ZERO:
            return start
        remaining, day, cursor = amount, start.date(), start
        while True:
            for begin, end in self._windows(day):
                seg = max(cursor, begin)
                if seg >= end:
                    continue
                if remaining <= end - seg:
                    return seg + remaining
                remaining -= end - seg
            day = self.next_working_day(day)
            cursor = datetime.combine(day, time(0), tzinfo=self.tz)

    def _working_between(self, start: datetime, end: datetime) -> timedelta:
        total, day = _ZERO, start.date()
        while end > start and day <= end.date():
            for begin, finish in self._windows(day):
                low, high = max(begin, start), min(finish, end)
                if high > low:
                    total += high - low
            day = self.next_working_day(day)
        return total

    def _merged_pauses(
        self, pauses: Iterable[tuple[datetime, datetime | None]], now: datetime | None
    ) -> list[tuple[datetime, datetime]]:
        current = self._local(now, "now") if now is not None else None
        intervals: list[tuple[datetime, datetime]] = []
        for started, ended in pauses:
            begin = self._local(started, "pauses")
            if ended is None:  # an open pause runs until now; the clock is read only when needed
                current = current or datetime.now(self.tz)
                end = max(current, begin)
            else:
                end = self._local(ended, "pauses")
            if end < begin:
                raise ValidationError(
                    "a pause cannot end before it starts", errors={"pauses": [f"{begin} > {end}"]}
                )
            intervals.append((begin, end))
        merged: list[tuple[datetime, datetime]] = []
        for begin, end in sorted(intervals):
            if merged and begin <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((begin, end))
        return merged
