"""Every query of the sandbox gateway, as functions of a connection inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from .tables import sandbox_transactions as txn

Row = Any
PENDING = "pending"
PAID = "paid"
FAILED = "failed"


def find(conn: Connection, tmn_code: str, txn_ref: str) -> Row | None:
    """Return the transaction a merchant opened under ``txn_ref``, or None."""
    query = select(txn).where(txn.c.tmn_code == tmn_code, txn.c.txn_ref == txn_ref)
    return conn.execute(query).first()


def get(conn: Connection, transaction_id: int) -> Row | None:
    """Return the transaction with this id, or None."""
    return conn.execute(select(txn).where(txn.c.id == transaction_id)).first()


def insert_pending(conn: Connection, values: Mapping[str, Any], at: datetime) -> int:
    """Record a new pending transaction and return its id.

    Raises:
        sqlalchemy.exc.IntegrityError: the merchant already opened one under this ``txn_ref``.
    """
    row = {**values, "status": PENDING, "created_at": at, "updated_at": at}
    result = conn.execute(insert(txn).values(**row).returning(txn.c.id))
    return int(result.scalar_one())


def settle(conn: Connection, transaction_id: int, values: Mapping[str, Any], at: datetime) -> bool:
    """Write the outcome of a pending transaction; return False when it was no longer pending."""
    statement = (
        update(txn).where(txn.c.id == transaction_id, txn.c.status == PENDING).values(**values, updated_at=at)
    )
    return conn.execute(statement).rowcount == 1


def record_ipn_answer(conn: Connection, transaction_id: int, rsp_code: str | None, at: datetime) -> None:
    """Write the last ``RspCode`` the merchant answered to the IPN (None: it never answered)."""
    conn.execute(update(txn).where(txn.c.id == transaction_id).values(ipn_rsp_code=rsp_code, updated_at=at))
