"""The queries of result delivery: result documents, postal orders and their events.

Functions of a connection inside the caller's transaction, like ``dossiers/store.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from accounts.tables import users

from .postal import REGISTERED, tracking_number
from .tables import postal_events, postal_orders, result_documents

_SUMMARY = ("sha256", "created_at", "collected_at", "collected_via")


# -- result documents -------------------------------------------------------------------------------
def insert_result_once(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Store a dossier's result document unless it has one; return whether it was stored."""
    r = result_documents.c
    if conn.execute(select(r.dossier_code).where(r.dossier_code == values["dossier_code"])).first():
        return False
    conn.execute(insert(result_documents).values(**values))
    return True


def result_of(conn: Connection, code: str, *, content: bool = False) -> dict[str, Any] | None:
    """Return a dossier's result document (with its bytes when ``content``), or None."""
    r = result_documents.c
    columns = [c for c in result_documents.c if content or c.name != "content"]
    row = conn.execute(select(*columns).where(r.dossier_code == code)).first()
    return dict(row._mapping) if row is not None else None


def result_summary(conn: Connection, code: str, delivery_method: str | None) -> dict[str, Any] | None:
    """Return what a dossier view shows of its result: hash, when decided and collected, how delivered."""
    found = result_of(conn, code)
    if found is None:
        return None
    return {**{k: found[k] for k in _SUMMARY}, "delivery_method": delivery_method}


def mark_collected(conn: Connection, code: str, values: Mapping[str, Any]) -> bool:
    """Record that the applicant got the result (``collected_at``, ``collected_by``, ``collected_via``...),
    the first time only; return whether this call recorded it."""
    r = result_documents.c
    stmt = update(result_documents).where(r.dossier_code == code, r.collected_at.is_(None)).values(**values)
    return bool(conn.execute(stmt).rowcount)


def full_name(conn: Connection, username: str) -> str:
    """Return the full name of an account, or the username itself when there is none."""
    found = conn.execute(select(users.c.full_name).where(users.c.username == username)).scalar()
    return str(found) if found else username


# -- postal orders ----------------------------------------------------------------------------------
def register_order(conn: Connection, values: Mapping[str, Any], at: datetime, actor: str) -> str:
    """Register a postal order (status registered) with its first event; return its tracking number.

    The tracking number's serial is the order's id, so numbers are unique without another counter.
    """
    placeholder = f"~{values['dossier_code']}"[:40]  # unique (one order per dossier) until the real number
    row = {**values, "tracking_number": placeholder, "status": REGISTERED, "created_at": at, "updated_at": at}
    order_id = conn.execute(insert(postal_orders).values(**row).returning(postal_orders.c.id)).scalar_one()
    number = tracking_number(int(order_id))
    conn.execute(update(postal_orders).where(postal_orders.c.id == order_id).values(tracking_number=number))
    add_event(conn, int(order_id), {"status": REGISTERED, "at": at, "note": None, "actor": actor})
    return number


def order_of(conn: Connection, code: str, *, for_update: bool = False) -> dict[str, Any] | None:
    """Return the postal order of a dossier, or None."""
    query = select(postal_orders).where(postal_orders.c.dossier_code == code)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    return dict(row._mapping) if row is not None else None


def order_by_tracking(conn: Connection, number: str, *, for_update: bool = False) -> dict[str, Any] | None:
    """Return the postal order with a tracking number, or None."""
    query = select(postal_orders).where(postal_orders.c.tracking_number == number)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    return dict(row._mapping) if row is not None else None


def set_order_status(conn: Connection, order_id: int, status: str, at: datetime) -> None:
    """Move a postal order to ``status``."""
    stmt = update(postal_orders).where(postal_orders.c.id == order_id).values(status=status, updated_at=at)
    conn.execute(stmt)


def add_event(conn: Connection, order_id: int, values: Mapping[str, Any]) -> None:
    """Append an event (status, at, note, actor) to a postal order's history."""
    conn.execute(insert(postal_events).values(postal_order_id=order_id, **values))


def events_of(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    """Return a postal order's events in order."""
    e = postal_events.c
    query = select(e.status, e.at, e.note, e.actor).where(e.postal_order_id == order_id).order_by(e.at, e.id)
    return [dict(row._mapping) for row in conn.execute(query)]
