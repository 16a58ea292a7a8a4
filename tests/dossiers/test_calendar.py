"""The working-day calendar: due dates, holidays, overrides, working hours, pauses and outcomes.

Every expected value is computed by hand; the reasoning sits next to each case.  Holiday facts are those
of the installed ``holidays`` package (checked for 2024-2027), plus the override table where the package
lacks an announced swap.  Default windows are 07:30-11:30 and 13:30-17:00, i.e. a 7.5-hour working day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from dossiers.calendar import (
    ANNOUNCED_OVERRIDES,
    EXTRA_DAY_OFF_NAME,
    CalendarOverrides,
    WorkingCalendar,
    WorkingHours,
)
from engine.errors import ValidationError

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkingCalendar(years=[2025, 2026])
NO_OVERRIDES = CalendarOverrides()
EXTRA_WED_OFF = CalendarOverrides(days_off=frozenset({date(2026, 3, 4)}))


def vn(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=VN)


# --- due dates in working days -------------------------------------------------------------------------

DUE_CASES = [
    # DOMAIN.md: received Mon 10:00 (< 15:00) -> deemed Mon, not counted; Tue 1, Wed 2, Thu 3.
    pytest.param(vn(2026, 3, 2, 10), 3, NO_OVERRIDES, date(2026, 3, 5), id="3d-monday-morning"),
    # DOMAIN.md: received Mon 16:00 (>= 15:00) -> deemed Tue; Wed 1, Thu 2, Fri 3.
    pytest.param(vn(2026, 3, 2, 16), 3, NO_OVERRIDES, date(2026, 3, 6), id="3d-monday-after-cutoff"),
    # 15:00 sharp is not "before the cut-off" -> deemed Tue -> Fri.
    pytest.param(vn(2026, 3, 2, 15), 3, NO_OVERRIDES, date(2026, 3, 6), id="3d-at-cutoff"),
    # Same-day procedure received Mon 10:00 -> due the deemed receipt day itself, Mon.
    pytest.param(vn(2026, 3, 2, 10), 0, NO_OVERRIDES, date(2026, 3, 2), id="0d-same-day"),
    # Same-day procedure after 15:00 -> next working day, Tue.
    pytest.param(vn(2026, 3, 2, 16), 0, NO_OVERRIDES, date(2026, 3, 3), id="0d-after-cutoff"),
    # Received Sat 7/3 09:00 -> deemed Mon 9/3 (0 days -> Mon).
    pytest.param(vn(2026, 3, 7, 9), 0, NO_OVERRIDES, date(2026, 3, 9), id="0d-saturday"),
    # Received Sun 8/3 -> deemed Mon 9/3; Tue 1, Wed 2, Thu 3 = 12/3.
    pytest.param(vn(2026, 3, 8, 9), 3, NO_OVERRIDES, date(2026, 3, 12), id="3d-sunday"),
    # Fri 6/3 16:30 -> deemed Mon 9/3 (weekend skipped); Tue 10/3 is day 1.
    pytest.param(vn(2026, 3, 6, 16, 30), 1, NO_OVERRIDES, date(2026, 3, 10), id="1d-friday-evening"),
    # Tết 2026 (package: 16-20/2 off, with the weekends 14/2-22/2): received Fri 13/2 10:00 -> deemed 13/2;
    # Mon 23/2 1, Tue 24/2 2, Wed 25/2 3.
    pytest.param(vn(2026, 2, 13, 10), 3, NO_OVERRIDES, date(2026, 2, 25), id="3d-across-tet-2026"),
    # Fri 13/2/2026 16:00 -> deemed the first working day after Tết, Mon 23/2.
    pytest.param(vn(2026, 2, 13, 16), 0, NO_OVERRIDES, date(2026, 2, 23), id="0d-tet-2026-after-cutoff"),
    # Received online on mùng 2 (Wed 18/2/2026) -> deemed Mon 23/2; Tue 24/2 is day 1.
    pytest.param(vn(2026, 2, 18, 9), 1, NO_OVERRIDES, date(2026, 2, 24), id="1d-received-during-tet"),
    # Tết 2025 (25/1-2/2 off): Fri 24/1 10:00 -> deemed 24/1; Mon 3/2 is day 1.
    pytest.param(vn(2025, 1, 24, 10), 1, NO_OVERRIDES, date(2025, 2, 3), id="1d-across-tet-2025"),
    # 30/4 Thu and 1/5 Fri 2026 off, weekend 2-3/5: Wed 29/4 10:00 -> Mon 4/5 1 ... Fri 8/5 5.
    pytest.param(vn(2026, 4, 29, 10), 5, NO_OVERRIDES, date(2026, 5, 8), id="5d-across-30-4-2026"),
    # Hùng Kings 2026 falls on Sun 26/4 -> compensatory Mon 27/4: Fri 24/4 -> Tue 28/4 1, Wed 29/4 2.
    pytest.param(vn(2026, 4, 24, 10), 2, NO_OVERRIDES, date(2026, 4, 29), id="2d-hung-kings-observed"),
    # 2025 swap: Fri 2/5 off for make-up Sat 26/4; Tue 29/4 -> 30/4, 1/5, 2/5 off, weekend -> Mon 5/5.
    pytest.param(vn(2025, 4, 29, 10), 1, NO_OVERRIDES, date(2025, 5, 5), id="1d-across-30-4-2025"),
    # The make-up Saturday 26/4/2025 is a working day: Fri 25/4 10:00 + 1 -> Sat 26/4.
    pytest.param(vn(2025, 4, 25, 10), 1, NO_OVERRIDES, date(2025, 4, 26), id="1d-package-makeup-saturday"),
    # National Day 2025: Mon 1/9 and Tue 2/9 off; Fri 29/8 -> Wed 3/9 1, Thu 4/9 2.
    pytest.param(vn(2025, 8, 29, 10), 2, NO_OVERRIDES, date(2025, 9, 4), id="2d-across-2-9-2025"),
    # National Day 2026 (package): Mon 31/8 (swap), Tue 1/9, Wed 2/9 off; Fri 28/8 + 1 -> Thu 3/9.
    pytest.param(vn(2026, 8, 28, 10), 1, NO_OVERRIDES, date(2026, 9, 3), id="1d-across-2-9-2026"),
    # Year boundary, package only: Wed 31/12/2025 -> 1/1 off; Fri 2/1 1, Mon 5/1 2, Tue 6/1 3.
    pytest.param(vn(2025, 12, 31, 10), 3, NO_OVERRIDES, date(2026, 1, 6), id="3d-new-year-package"),
    # With the announced 2026 swap (2/1 off): Mon 5/1 1, Tue 6/1 2, Wed 7/1 3.
    pytest.param(vn(2025, 12, 31, 10), 3, ANNOUNCED_OVERRIDES, date(2026, 1, 7), id="3d-new-year-swap"),
    # Make-up Sat 10/1/2026 from the override table: Fri 9/1 + 1 -> Sat 10/1 (not Mon 12/1).
    pytest.param(vn(2026, 1, 9, 10), 1, ANNOUNCED_OVERRIDES, date(2026, 1, 10), id="1d-override-saturday"),
    # Without the override the Saturday is not a working day -> Mon 12/1.
    pytest.param(vn(2026, 1, 9, 10), 1, NO_OVERRIDES, date(2026, 1, 12), id="1d-no-override-saturday"),
    # Received on the make-up Saturday itself, 09:00 -> deemed that Saturday (0 days).
    pytest.param(vn(2026, 1, 10, 9), 0, ANNOUNCED_OVERRIDES, date(2026, 1, 10), id="0d-on-makeup-saturday"),
    # Extra day off Wed 4/3 from the table: Mon 10:00 -> Tue 1, Thu 2, Fri 3.
    pytest.param(vn(2026, 3, 2, 10), 3, EXTRA_WED_OFF, date(2026, 3, 6), id="3d-override-day-off"),
    # Thu 31/12/2026 16:00 -> Fri 1/1/2027 is a holiday -> deemed Mon 4/1/2027; Tue 5/1 is day 1.
    pytest.param(vn(2026, 12, 31, 16), 1, NO_OVERRIDES, date(2027, 1, 5), id="1d-into-2027"),
    # 08:30 UTC is 15:30 in Ha Noi -> after the cut-off -> deemed Tue -> Fri.
    pytest.param(datetime(2026, 3, 2, 8, 30, tzinfo=UTC), 3, NO_OVERRIDES, date(2026, 3, 6), id="utc-input"),
    # Sun 1/3 23:00 UTC is Mon 2/3 06:00 in Ha Noi -> deemed Mon -> Thu.
    pytest.param(datetime(2026, 3, 1, 23, tzinfo=UTC), 3, NO_OVERRIDES, date(2026, 3, 5), id="utc-day-shift"),
]


@pytest.mark.parametrize(("received", "days", "overrides", "expected"), DUE_CASES)
def test_due_date(received: datetime, days: int, overrides: CalendarOverrides, expected: date) -> None:
    calendar = WorkingCalendar(overrides)
    due = calendar.due_date(received, days)
    assert due == expected
    # Counting back agrees: exactly `days` working days in (deemed receipt, due].
    assert calendar.working_days_between(calendar.deemed_receipt(received), due) == days


def test_due_at_is_the_end_of_the_working_day_in_local_time() -> None:
    due = CAL.due_at(vn(2026, 3, 2, 10), 3)
    assert due == vn(2026, 3, 5, 17)
    assert due.utcoffset() is not None
    assert due.utcoffset().total_seconds() == 7 * 3600  # type: ignore[union-attr]


def test_negative_processing_time_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        CAL.due_date(vn(2026, 3, 2, 10), -1)
    assert "working_days" in info.value.errors


# --- days ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 2, 16), False),  # Giao thừa 2026 (Mon)
        (date(2026, 2, 20), False),  # mùng 4 (Fri)
        (date(2026, 2, 23), True),  # first day back after Tết 2026
        (date(2025, 9, 1), False),  # adjacent National Day 2025
        (date(2026, 4, 27), False),  # Hùng Kings 2026 observed (Sun 26/4 -> Mon)
        (date(2024, 5, 4), True),  # make-up Saturday 2024 the package knows
        (date(2026, 8, 22), True),  # make-up Saturday 2026 the package knows
        (date(2026, 1, 2), True),  # the package lacks the 2026 New Year swap ...
        (date(2026, 1, 10), False),  # ... and its make-up Saturday
        (date(2026, 3, 3), True),  # an ordinary Tuesday
        (date(2026, 3, 7), False),  # an ordinary Saturday
    ],
)
def test_is_working_day_from_the_package(day: date, working: bool) -> None:
    assert CAL.is_working_day(day) is working


def test_override_working_day_beats_a_package_holiday() -> None:
    # An admin may reopen a day the package closes (e.g. a package error); working_days wins.
    calendar = WorkingCalendar(CalendarOverrides(working_days=frozenset({date(2026, 11, 24)})))
    assert calendar.is_working_day(date(2026, 11, 24))
    assert calendar.holiday_name(date(2026, 11, 24)) is None


def test_override_day_off_beats_a_package_makeup_saturday() -> None:
    calendar = WorkingCalendar(CalendarOverrides(days_off=frozenset({date(2025, 4, 26)})))
    assert not calendar.is_working_day(date(2025, 4, 26))


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 2, 17), "Tết Nguyên Đán"),
        (date(2025, 9, 2), "Quốc khánh"),
        (date(2026, 4, 27), "Ngày Giỗ Tổ Hùng Vương (nghỉ bù)"),
        (date(2025, 5, 2), "Ngày nghỉ (thay cho ngày 26/04/2025)"),
        (date(2026, 1, 1), "Tết Dương lịch"),
        (date(2026, 3, 3), None),
    ],
)
def test_holiday_name_in_vietnamese(day: date, name: str | None) -> None:
    assert CAL.holiday_name(day) == name


def test_holiday_name_of_an_override_day_off() -> None:
    assert WorkingCalendar(ANNOUNCED_OVERRIDES).holiday_name(date(2026, 1, 2)) == EXTRA_DAY_OFF_NAME


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 12, 31), date(2026, 1, 2)),  # Wed -> Thu 1/1 off -> Fri 2/1 (package)
        (date(2026, 2, 13), date(2026, 2, 23)),  # Fri before Tết -> Mon after it
        (date(2030, 3, 1), date(2030, 3, 4)),  # a far year is loaded lazily: Fri -> Mon
    ],
)
def test_next_working_day(day: date, expected: date) -> None:
    assert CAL.next_working_day(day) == expected


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (date(2026, 3, 2), date(2026, 3, 5), 3),  # Tue, Wed, Thu
        (date(2026, 2, 13), date(2026, 2, 23), 1),  # only Mon 23/2 across Tết
        (date(2026, 3, 2), date(2026, 3, 2), 0),  # empty interval
        (date(2026, 3, 5), date(2026, 3, 2), 0),  # reversed interval
    ],
)
def test_working_days_between(start: date, end: date, count: int) -> None:
    assert CAL.working_days_between(start, end) == count


def test_a_broken_override_table_does_not_loop_forever() -> None:
    closed = frozenset(date.fromordinal(date(2027, 1, 1).toordinal() + i) for i in range(400))
    with pytest.raises(ValidationError) as info:
        WorkingCalendar(CalendarOverrides(days_off=closed)).next_working_day(date(2026, 12, 31))
    assert "overrides" in info.value.errors


# --- working hours -------------------------------------------------------------------------------------

EIGHT_HOUR_DAY = WorkingHours(morning=(time(7, 30), time(11, 30)), afternoon=(time(13, 0), time(17, 0)))
SHORT_DAY = WorkingHours(morning=(time(7, 30), time(11, 30)), afternoon=(time(13, 30), time(17, 0)))


@pytest.mark.parametrize(
    ("start", "hours", "windows", "expected"),
    [
        # A 7.5-hour day (13:30-17:00): Mon 10:00-11:30 1.5 + 13:30-17:00 3.5 = 5; Tue 07:30 + 3 = 10:30.
        pytest.param(vn(2026, 3, 2, 10), 8, SHORT_DAY, vn(2026, 3, 3, 10, 30), id="8h-short-day"),
        # The default 8-hour day (13:00-17:00): 1.5 + 4 = 5.5; Tue 07:30 + 2.5 = 10:00, same time next day.
        pytest.param(vn(2026, 3, 2, 10), 8, EIGHT_HOUR_DAY, vn(2026, 3, 3, 10), id="8h-eight-hour-day"),
        pytest.param(vn(2026, 3, 2, 10), 8, WorkingHours(), vn(2026, 3, 3, 10), id="8h-default-windows"),
        # Starting at 11:45 (lunch) -> the clock starts at 13:00; + 1 h = 14:00.
        pytest.param(vn(2026, 3, 2, 11, 45), 1, WorkingHours(), vn(2026, 3, 2, 14), id="1h-from-lunch"),
        # Ending exactly at the end of the morning window stays at 11:30, not 13:30.
        pytest.param(vn(2026, 3, 2, 10), 1.5, WorkingHours(), vn(2026, 3, 2, 11, 30), id="1.5h-to-noon"),
        # Fri 16:00 + 2 h: 1 h on Friday, weekend skipped, Mon 07:30 + 1 h = 08:30.
        pytest.param(vn(2026, 3, 6, 16), 2, WorkingHours(), vn(2026, 3, 9, 8, 30), id="2h-across-weekend"),
        # Sat 09:00 -> nothing counts until Mon 07:30; + 1 h = 08:30.
        pytest.param(vn(2026, 3, 7, 9), 1, WorkingHours(), vn(2026, 3, 9, 8, 30), id="1h-from-saturday"),
        # Before opening: Mon 06:00 -> 07:30 + 0.5 h = 08:00.
        pytest.param(vn(2026, 3, 2, 6), 0.5, WorkingHours(), vn(2026, 3, 2, 8), id="0.5h-before-opening"),
        # Fri 13/2/2026 16:00 + 2 h: 1 h that day, Tết and two weekends skipped, Mon 23/2 08:30.
        pytest.param(vn(2026, 2, 13, 16), 2, WorkingHours(), vn(2026, 2, 23, 8, 30), id="2h-across-tet"),
        # 0 hours returns the start unchanged, even outside the windows.
        pytest.param(vn(2026, 3, 7, 9), 0, WorkingHours(), vn(2026, 3, 7, 9), id="0h"),
    ],
)
def test_add_working_hours(start: datetime, hours: float, windows: WorkingHours, expected: datetime) -> None:
    assert WorkingCalendar(hours=windows).add_working_hours(start, hours) == expected


@pytest.mark.parametrize("hours", [-1.0, float("nan"), float("inf")])
def test_add_working_hours_refuses_bad_amounts(hours: float) -> None:
    with pytest.raises(ValidationError):
        CAL.add_working_hours(vn(2026, 3, 2, 10), hours)


def test_working_hours_must_be_ordered() -> None:
    with pytest.raises(ValidationError):
        WorkingHours(morning=(time(13, 0), time(11, 0)))


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (vn(2026, 3, 2, 10), vn(2026, 3, 2, 14), 2.5),  # 10:00-11:30 + 13:00-14:00
        (vn(2026, 3, 6, 15), vn(2026, 3, 9, 9, 30), 4.0),  # Fri 15-17 + Mon 07:30-09:30; weekend free
        (vn(2026, 2, 13, 16), vn(2026, 2, 23, 8), 1.5),  # Fri 16-17 + Mon 07:30-08:00; Tết free
        (vn(2026, 3, 2, 14), vn(2026, 3, 2, 10), 0.0),  # reversed
    ],
)
def test_working_seconds_between(start: datetime, end: datetime, hours: float) -> None:
    assert CAL.working_seconds_between(start, end) == hours * 3600


# --- pauses --------------------------------------------------------------------------------------------

DUE_THU = vn(2026, 3, 5, 17)  # a 3-day procedure received Mon 2/3/2026 10:00


@pytest.mark.parametrize(
    ("pauses", "now", "expected"),
    [
        # Supplement Tue 10:00 -> Thu 10:00 = 15 h = 2 working days: Thu 17:00 -> Fri, Mon 17:00.
        pytest.param([(vn(2026, 3, 3, 10), vn(2026, 3, 5, 10))], None, vn(2026, 3, 9, 17), id="2-days"),
        # Open pause from Tue 10:00, now Wed 10:00: 1.5 + 3.5 + 2.5 = 7.5 h = 1 day -> Fri 17:00.
        pytest.param([(vn(2026, 3, 3, 10), None)], vn(2026, 3, 4, 10), vn(2026, 3, 6, 17), id="open"),
        # Overlapping pauses count once: Tue 14-16 lies inside Tue 10:00-Wed 10:00 -> still 1 day.
        pytest.param(
            [(vn(2026, 3, 3, 10), vn(2026, 3, 4, 10)), (vn(2026, 3, 3, 14), vn(2026, 3, 3, 16))],
            None,
            vn(2026, 3, 6, 17),
            id="overlapping",
        ),
        # Tue 3/3 15:00 -> Wed 4/3 09:30 counts 2 h + 2 h = 4 h: Thu 17:00 -> Fri 07:30 + 4 h = 11:30.
        pytest.param(
            [(vn(2026, 3, 3, 15), vn(2026, 3, 4, 9, 30))], None, vn(2026, 3, 6, 11, 30), id="4-hours"
        ),
        # A pause wholly on a Saturday costs no working time.
        pytest.param([(vn(2026, 3, 7, 8), vn(2026, 3, 7, 12))], None, DUE_THU, id="saturday-only"),
        # An open pause that starts after `now` counts nothing.
        pytest.param([(vn(2026, 3, 4, 10), None)], vn(2026, 3, 3, 10), DUE_THU, id="open-in-future"),
        pytest.param([], None, DUE_THU, id="no-pauses"),
    ],
)
def test_extend_for_pauses(
    pauses: list[tuple[datetime, datetime | None]], now: datetime | None, expected: datetime
) -> None:
    assert CAL.extend_for_pauses(DUE_THU, pauses, now=now) == expected


def test_a_pause_over_a_weekend_counts_only_working_time() -> None:
    # Due Wed 11/3 17:00; pause Fri 6/3 15:00 -> Mon 9/3 09:30 = Fri 15-17 (2 h) + Mon 07:30-09:30 (2 h);
    # the weekend is free.  Wed 17:00 + 4 h -> Thu 12/3 07:30 + 4 h = 11:30.
    pause = (vn(2026, 3, 6, 15), vn(2026, 3, 9, 9, 30))
    assert CAL.extend_for_pauses(vn(2026, 3, 11, 17), [pause]) == vn(2026, 3, 12, 11, 30)


def test_a_pause_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValidationError) as info:
        CAL.extend_for_pauses(DUE_THU, [(vn(2026, 3, 4, 10), vn(2026, 3, 3, 10))], now=DUE_THU)
    assert "pauses" in info.value.errors


# --- outcome -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finished", "expected"),
    [
        (vn(2026, 3, 4, 16), "early"),  # Wed, the day before the due Thursday
        (vn(2026, 3, 5, 9), "on_time"),  # on the due date
        (vn(2026, 3, 5, 17, 30), "on_time"),  # still the due date: outcomes go by day
        (vn(2026, 3, 6, 8), "late"),  # Fri, after the due date
        (datetime(2026, 3, 5, 18, tzinfo=UTC), "late"),  # 18:00 UTC is Fri 01:00 in Ha Noi
    ],
)
def test_outcome(finished: datetime, expected: str) -> None:
    assert CAL.outcome(DUE_THU, finished) == expected


# --- naive datetimes -----------------------------------------------------------------------------------

NAIVE = datetime(2026, 3, 2, 10)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: CAL.deemed_receipt(NAIVE), "received_at"),
        (lambda: CAL.due_date(NAIVE, 3), "received_at"),
        (lambda: CAL.due_at(NAIVE, 3), "received_at"),
        (lambda: CAL.add_working_hours(NAIVE, 1), "start"),
        (lambda: CAL.working_seconds_between(vn(2026, 3, 2), NAIVE), "end"),
        (lambda: CAL.outcome(DUE_THU, NAIVE), "finished_at"),
        (lambda: CAL.extend_for_pauses(DUE_THU, [(NAIVE, None)], now=DUE_THU), "pauses"),
    ],
)
def test_naive_datetimes_are_refused(call: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        call()
    assert field in info.value.errors
    assert "timezone-aware" in info.value.message
