"""The grouped query behind the Decision 766 indicators: counts per receiving agency and calendar month.

One statement for every indicator family (progress, online submission, online payment, satisfaction,
digitisation), grouped by agency and month, on SQLite as on PostgreSQL.  A dossier's month is the calendar
month in Asia/Ho_Chi_Minh of its reception, or of its submission when it was never received; Viet Nam keeps
UTC+7 all year (no daylight saving), which is what SQLite's ``+7 hours`` modifier relies on.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, false, func, literal_column, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from payments.tables import payments

from .status import CHANNELS
from .tables import dossiers, result_documents

# Each count: how a dossier adds 1 to it (a condition over its row).  See ``dossiers/indicators.py``.
COUNTS = (
    "dossiers",
    "received",
    "received_online",
    "finished",
    "finished_on_time",
    "with_fee",
    "paid_online",
    "rated",
    "rating_sum",
    "satisfied",
    "results_electronic",
)


def local_month(conn: Connection, moment: ColumnElement[Any]) -> ColumnElement[str]:
    """Return ``YYYY-MM`` of a UTC timestamp column in Asia/Ho_Chi_Minh, in the connection's SQL dialect."""
    if conn.dialect.name == "postgresql":
        local = func.timezone(literal_column("'Asia/Ho_Chi_Minh'"), moment)
        return func.to_char(local, literal_column("'YYYY-MM'"))
    return func.strftime(literal_column("'%Y-%m'"), moment, literal_column("'+7 hours'"))


def _flags(fee_procedures: Collection[str]) -> dict[str, ColumnElement[Any]]:
    """The 0/1 (or value) each dossier row contributes to each count."""
    d = dossiers.c
    received = d.received_at.is_not(None)
    finished = d.outcome.is_not(None)
    has_fee = and_(received, d.procedure_code.in_(sorted(fee_procedures))) if fee_procedures else false()
    paid = (
        select(payments.c.id).where(payments.c.dossier_code == d.code, payments.c.status == "paid").exists()
    )
    electronic = select(result_documents.c.dossier_code).where(result_documents.c.dossier_code == d.code)
    conditions: dict[str, ColumnElement[bool]] = {
        "received": received,
        "received_online": and_(received, d.channel == CHANNELS["online"]),
        "finished": finished,
        "finished_on_time": d.outcome.in_(("early", "on_time")),
        "with_fee": has_fee,
        "paid_online": and_(has_fee, paid),
        "rated": d.rating.is_not(None),
        "satisfied": d.rating >= 4,
        "results_electronic": and_(finished, electronic.exists()),
    }
    flags: dict[str, ColumnElement[Any]] = {
        name: case((condition, 1), else_=0) for name, condition in conditions.items()
    }
    flags["rating_sum"] = func.coalesce(d.rating, 0)
    return flags


def monthly_counts(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    agency_code: str | None,
    fee_procedures: Collection[str],
) -> list[dict[str, Any]]:
    """Count dossiers per receiving agency and local month, for every indicator family, in one query.

    Args:
        conn: the connection of the caller's unit of work.
        start, end: the half-open UTC interval of months asked for (``start`` included, ``end`` not).
        agency_code: only this agency's dossiers (None: every agency).
        fee_procedures: codes of procedures that charge a fee or charge (their dossiers count in
            ``with_fee`` once received).

    Returns:
        One dict per (agency, month) with dossiers: ``agency_code``, ``month`` (``YYYY-MM``) and the
        integers named in ``COUNTS``, ordered by agency then month.
    """
    d = dossiers.c
    moment = func.coalesce(d.received_at, d.submitted_at)
    # ``start <= moment < end``, spelled per column so that an agency's indexes by reception and by
    # submission (``ix_dossiers_agency_received``, ``ix_dossiers_agency_submitted``) serve it.
    received = and_(d.received_at >= start, d.received_at < end)
    submitted = and_(d.received_at.is_(None), d.submitted_at >= start, d.submitted_at < end)
    where = [or_(received, submitted)]
    if agency_code is not None:
        where.append(d.agency_code == agency_code)
    flags = _flags(fee_procedures)
    rows = (
        select(
            d.agency_code.label("agency_code"),
            local_month(conn, moment).label("month"),
            *(flag.label(name) for name, flag in flags.items()),
        )
        .where(*where)
        .subquery("per_dossier")
    )
    counted = (
        select(
            rows.c.agency_code,
            rows.c.month,
            func.count().label("dossiers"),
            *(func.sum(rows.c[name]).label(name) for name in flags),
        )
        .group_by(rows.c.agency_code, rows.c.month)
        .order_by(rows.c.agency_code, rows.c.month)
    )
    return [
        {**row._mapping, **{name: int(row._mapping[name] or 0) for name in COUNTS}}
        for row in conn.execute(counted)
    ]
