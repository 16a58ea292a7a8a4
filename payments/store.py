"""Every query of the payment domain, as functions of a connection inside the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .tables import payment_notifications, payments, receipt_counters, receipts

PENDING = "pending"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _payment(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["lines"] = json.loads(out["lines"])
    return out


# -- attempts ---------------------------------------------------------------------------------------
def insert_payment(conn: Connection, values: Mapping[str, Any]) -> int:
    """Insert a payment attempt (``lines`` as a list) and return its id."""
    row = {**values, "lines": _json(values["lines"])}
    result = conn.execute(insert(payments).values(**row))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def set_payment_url(conn: Connection, payment_id: int, url: str) -> None:
    """Record the signed redirect of an attempt."""
    conn.execute(update(payments).where(payments.c.id == payment_id).values(payment_url=url))


def payment_by_ref(conn: Connection, txn_ref: str) -> dict[str, Any] | None:
    """Return the attempt with this transaction reference, or None."""
    row = conn.execute(select(payments).where(payments.c.txn_ref == txn_ref)).first()
    return _payment(row) if row is not None else None


def payments_of(conn: Connection, dossier_code: str) -> list[dict[str, Any]]:
    """Return a dossier's attempts, oldest first, each with the number of its e-receipt (or None)."""
    query = (
        select(payments, receipts.c.number.label("receipt_number"))
        .outerjoin(receipts, receipts.c.payment_id == payments.c.id)
        .where(payments.c.dossier_code == dossier_code)
        .order_by(payments.c.id)
    )
    return [_payment(row) for row in conn.execute(query)]


def count_payments(conn: Connection, dossier_code: str) -> int:
    """Return how many attempts a dossier has had."""
    query = select(func.count()).select_from(payments).where(payments.c.dossier_code == dossier_code)
    return int(conn.execute(query).scalar_one())


def due_for_reconciliation(conn: Connection, before: datetime, limit: int) -> list[dict[str, Any]]:
    """Return pending attempts that expired before ``before``, earliest first (index: status, expires_at)."""
    query = (
        select(payments)
        .where(payments.c.status == PENDING, payments.c.expires_at < before)
        .order_by(payments.c.expires_at, payments.c.id)
        .limit(limit)
    )
    return [_payment(row) for row in conn.execute(query)]


def settle(conn: Connection, payment_id: int, values: Mapping[str, Any]) -> bool:
    """Move a pending attempt to its final state; return False when it was no longer pending.

    The condition on ``status`` makes two settlers of one attempt (two identical IPNs, an IPN and the
    reconciliation job) settle it once: the second finds no pending row.
    """
    statement = (
        update(payments).where(payments.c.id == payment_id, payments.c.status == PENDING).values(**values)
    )
    return int(conn.execute(statement).rowcount) == 1


# -- notifications ----------------------------------------------------------------------------------
def insert_notification(conn: Connection, values: Mapping[str, Any]) -> None:
    """Log one notification received (``params`` as a dict), with the answer given."""
    conn.execute(insert(payment_notifications).values(**{**values, "params": _json(values["params"])}))


def notifications_of(conn: Connection, txn_ref: str) -> list[dict[str, Any]]:
    """Return the notifications logged for a transaction reference, oldest first."""
    n = payment_notifications.c
    query = select(payment_notifications).where(n.txn_ref == txn_ref).order_by(n.id)
    return [dict(row._mapping) for row in conn.execute(query)]


# -- e-receipts -------------------------------------------------------------------------------------
def next_receipt_number(conn: Connection, year: int) -> int:
    """Take the next receipt number of ``year``; the counter row stays locked until the transaction ends,
    so numbers are unique under concurrency and a rolled-back settlement gives its number back."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(receipt_counters).values(year=year, last=1)
    statement = statement.on_conflict_do_update(
        index_elements=["year"], set_={"last": receipt_counters.c.last + 1}
    ).returning(receipt_counters.c.last)
    return int(conn.execute(statement).scalar_one())


def insert_receipt(conn: Connection, values: Mapping[str, Any]) -> None:
    """Insert an e-receipt (``lines`` as a list)."""
    conn.execute(insert(receipts).values(**{**values, "lines": _json(values["lines"])}))


def receipt_of(conn: Connection, dossier_code: str) -> dict[str, Any] | None:
    """Return the e-receipt of a dossier's advancing payment (the latest, if several were paid), or None."""
    query = (
        select(
            receipts, payments.c.txn_ref, payments.c.provider, payments.c.transaction_no, payments.c.bank_code
        )
        .join(payments, payments.c.id == receipts.c.payment_id)
        .where(receipts.c.dossier_code == dossier_code)
        .order_by(payments.c.process_advanced.desc(), receipts.c.issued_at.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["lines"] = [{**line, "amount": Decimal(str(line["amount"]))} for line in json.loads(out["lines"])]
    return out
