"""Decision 766/QĐ-TTg (2022) style indicators of service to citizens, per receiving agency and month.

The counts come from one grouped query (``indicator_store.monthly_counts``); this module turns them into
rates, totals per month and over the period, and an indicative weighted score.  Definitions:

- a dossier belongs to the calendar month (Asia/Ho_Chi_Minh) in which it was received, or submitted when it
  was never received; every count below is over the dossiers of that month (a cohort);
- on-time rate: dossiers finished early or on time / dossiers finished (a result was decided: ``outcome``);
- online rate: dossiers received that were submitted online (channel 2) / dossiers received;
- online payment rate: received dossiers with at least one paid online payment / received dossiers of
  procedures that charge a fee (a fee line with an amount above 0 or fixed locally, not exempt);
- satisfaction: the average rating (1-5) and the share of ratings of 4 or 5 among rated dossiers;
- digitisation: finished dossiers whose result was issued as an electronic document / dossiers finished.

The weighted score uses the weights commonly cited for the index's groups (DOMAIN.md: publicity 18, progress
20, online services 12, online payment 10, satisfaction 18, digitisation 22, to be verified); publicity cannot
be computed from dossiers, so the score covers only the groups with data and is indicative, not official.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.errors import ForbiddenError, ValidationError
from engine.store import Store

from . import indicator_store, store
from .access import OFFICIAL_LANES, Caller

VN = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_MONTHS = 36
# group -> (weight out of 100, the rate that measures it); publicity (18) has no rate from dossiers.
WEIGHTS: dict[str, tuple[int, str | None]] = {
    "publicity": (18, None),
    "progress": (20, "on_time_rate"),
    "online_services": (12, "online_rate"),
    "online_payment": (10, "online_payment_rate"),
    "satisfaction": (18, "satisfaction_rate"),
    "digitisation": (22, "digitisation_rate"),
}
# rate -> (numerator count, denominator count)
RATES = {
    "on_time_rate": ("finished_on_time", "finished"),
    "online_rate": ("received_online", "received"),
    "online_payment_rate": ("paid_online", "with_fee"),
    "satisfaction_rate": ("satisfied", "rated"),
    "digitisation_rate": ("results_electronic", "finished"),
}


@dataclass(frozen=True)
class MonthRange:
    """Calendar months ``first`` .. ``last`` (both included) as (year, month)."""

    first: tuple[int, int]
    last: tuple[int, int]

    @classmethod
    def parse(cls, first: str | None, last: str | None, today: date) -> MonthRange:
        """Read ``YYYY-MM`` bounds; by default the twelve months ending with ``today``'s.

        Raises:
            ValidationError: a bound is malformed, ``from`` is after ``to``, or the span is too long.
        """
        end = _month(last, "to") if last else (today.year, today.month)
        start = _month(first, "from") if first else _shift(end, -11)
        if start > end:
            raise ValidationError("'from' is after 'to'", {"from": ["must not be after 'to'"]})
        if _index(end) - _index(start) >= MAX_MONTHS:
            raise ValidationError(
                f"At most {MAX_MONTHS} months at a time",
                {"from": [f"at most {MAX_MONTHS} months before 'to'"]},
            )
        return cls(start, end)

    def months(self) -> list[str]:
        """Every month of the range as ``YYYY-MM``, in order."""
        return [_label(_shift(self.first, n)) for n in range(_index(self.last) - _index(self.first) + 1)]

    def bounds(self) -> tuple[datetime, datetime]:
        """The half-open interval of the range, local midnights of the first day and of the day after."""
        after = _shift(self.last, 1)
        return (datetime(*self.first, 1, tzinfo=VN), datetime(*after, 1, tzinfo=VN))


def _month(text: str, field: str) -> tuple[int, int]:
    try:
        parsed = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise ValidationError(f"'{field}' must be YYYY-MM", {field: ["not a month (YYYY-MM)"]}) from None
    return parsed.year, parsed.month


def _index(month: tuple[int, int]) -> int:
    return month[0] * 12 + month[1] - 1


def _shift(month: tuple[int, int], by: int) -> tuple[int, int]:
    index = _index(month) + by
    return index // 12, index % 12 + 1


def _label(month: tuple[int, int]) -> str:
    return f"{month[0]:04d}-{month[1]:02d}"


def charges_fee(procedure: Mapping[str, Any]) -> bool:
    """Return whether a procedure charges a fee or charge: a line not exempt whose amount is not 0."""
    return any(
        fee.get("mode") not in ("exempt", "none") and fee.get("amount") != 0
        for fee in procedure.get("fees") or ()
    )


def measure(counts: Mapping[str, int]) -> dict[str, Any]:
    """Return the counts with their rates (None when the denominator is 0) and the indicative score."""
    measured: dict[str, Any] = {name: int(counts.get(name, 0)) for name in indicator_store.COUNTS}
    for rate, (part, whole) in RATES.items():
        measured[rate] = round(measured[part] / measured[whole], 4) if measured[whole] else None
    rated = measured["rated"]
    measured["average_rating"] = round(measured["rating_sum"] / rated, 2) if rated else None
    measured["score"] = weighted_score(measured)
    return measured


def weighted_score(rates: Mapping[str, Any]) -> dict[str, Any]:
    """Return the indicative score: weight x rate per group with data, and their total out of 100.

    ``value`` is the points earned over the points of the groups that could be measured, scaled to 100
    (None when none could).
    """
    groups: list[dict[str, Any]] = []
    for group, (weight, rate_name) in WEIGHTS.items():
        rate = rates.get(rate_name) if rate_name else None
        points = round(weight * rate, 2) if rate is not None else None
        groups.append({"group": group, "weight": weight, "rate": rate, "points": points})
    measured = [g for g in groups if g["points"] is not None]
    possible = sum(g["weight"] for g in measured)
    earned = round(sum(g["points"] for g in measured), 2)
    return {
        "indicative": True,
        "points": earned,
        "max_points": possible,
        "value": round(earned * 100 / possible, 1) if possible else None,
        "groups": groups,
    }


def _add(into: dict[str, int], counts: Mapping[str, Any]) -> None:
    for name in indicator_store.COUNTS:
        into[name] = into.get(name, 0) + int(counts[name])


def summarise(
    rows: Iterable[Mapping[str, Any]], months: list[str], names: Mapping[str, str]
) -> dict[str, Any]:
    """Return the rows measured, the totals of every month (zero-filled) and of the whole period."""
    by_month: dict[str, dict[str, int]] = {month: {} for month in months}
    total: dict[str, int] = {}
    measured_rows = []
    for row in rows:
        _add(by_month.setdefault(row["month"], {}), row)
        _add(total, row)
        code = row["agency_code"]
        measured_rows.append(
            {"agency_code": code, "agency_name": names.get(code), "month": row["month"], **measure(row)}
        )
    return {
        "rows": measured_rows,
        "months": [{"month": month, **measure(counts)} for month, counts in sorted(by_month.items())],
        "totals": measure(total),
    }


def indicators(db: Store, period: MonthRange, agency_code: str | None) -> dict[str, Any]:
    """Return the indicators of ``period`` for one receiving agency (or all, when None).

    Two reads in one unit of work: the catalogue (which procedures charge a fee, the agencies' names) and
    the grouped counts (``indicator_store.monthly_counts``).

    Returns:
        ``{"agencies": {code: name} of the catalogue, "rows": [per agency and month with dossiers],
        "months": [per month of the period, the agencies asked together], "totals": {the whole period}}``,
        each entry with its counts, rates (``measure``) and indicative score.
    """
    start, end = period.bounds()
    with db.unit_of_work(write=False) as uow:
        procedures = store.list_procedures(uow.conn)
        fee_codes = {p["code"] for p in procedures if charges_fee(p)}
        rows = indicator_store.monthly_counts(
            uow.conn, start=start, end=end, agency_code=agency_code, fee_procedures=fee_codes
        )
    agencies = {p["agency"]["code"]: p["agency"]["name"] for p in procedures if p.get("agency")}
    return {"agencies": dict(sorted(agencies.items())), **summarise(rows, period.months(), agencies)}


def agency_scope(caller: Caller, requested: str | None) -> str | None:
    """Return the agency whose indicators ``caller`` gets: officials their own, analysts and admins any.

    Args:
        caller: who asks.
        requested: the agency asked for (None: officials get their own, analysts and admins all).

    Raises:
        ForbiddenError: not an official, analyst or admin, or an official asking for another agency.
    """
    if caller.has("analyst", "admin"):
        return requested
    if not caller.has(*OFFICIAL_LANES) or caller.agency_code is None:
        raise ForbiddenError("The indicators are for officials, analysts and admins")
    if requested not in (None, caller.agency_code):
        raise ForbiddenError("Officials see the indicators of their own agency only")
    return caller.agency_code
