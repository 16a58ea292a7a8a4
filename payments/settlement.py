"""Settling a payment attempt: paid (with its e-receipt, advancing the process), failed or expired.

A paid attempt, its e-receipt and the delivery of ``payment.confirmed`` to the waiting instance are one
transaction (the message's unit of work, through ``Engine.send_message(within=...)``): a crash can never
leave "paid" without the advance, or the reverse.  Every settlement is a conditional update of a pending
row, so two settlers of one attempt (duplicate IPNs, an IPN and the reconciliation job) settle it once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from dossiers import store as dossier_store
from engine.errors import ConflictError, NotFoundError, TaskStateError
from engine.facade import Engine

from . import store

log = logging.getLogger("motcua.payments")
VN = ZoneInfo("Asia/Ho_Chi_Minh")
MESSAGE = "payment.confirmed"
ADVANCED = "advanced"  # paid, and the waiting process was given payment.confirmed
RECORDED = "recorded"  # paid, but no process waited any more: the money is to be refunded
ALREADY = "already"  # the attempt was settled before (by another notification or the job)
REFUND_NOTE = "Đã thu tiền khi hồ sơ không còn chờ thanh toán: cần hoàn trả cho người nộp"
_ATTEMPTS = 3


@dataclass(frozen=True)
class PaidFacts:
    """What the provider told us about a successful payment."""

    response_code: str | None = "00"
    transaction_no: str | None = None
    bank_code: str | None = None
    paid_at: datetime | None = None


class _NotPending(ConflictError):
    """The attempt was settled meanwhile: roll the message back."""


class Settlement:
    """Settles attempts through the engine facade (one unit of work each).

    Args:
        engine: the engine; its clock dates the settlements.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def paid(self, payment: Mapping[str, Any], facts: PaidFacts, settled_by: str) -> str:
        """Mark a pending attempt paid, issue its e-receipt and deliver ``payment.confirmed``, at once.

        When no instance waits for the payment any more (the wait expired, the dossier was withdrawn, or
        another attempt was paid first), the money is still recorded (paid, ``process_advanced`` false,
        e-receipt issued) with a refund note and a ``payment_refund_due`` audit entry on the instance.

        Returns:
            ``ADVANCED``, ``RECORDED`` or ``ALREADY`` (settled before: nothing changed).

        Raises:
            ConflictError: other writers kept changing the instance (tried three times).
        """
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self._advance(payment, facts, settled_by)
                return ADVANCED
            except _NotPending:
                return ALREADY
            except (NotFoundError, TaskStateError):
                return self._record(payment, facts, settled_by)
            except ConflictError:
                # A concurrent writer, or the instance stopped waiting: look again.
                if self._status(payment) != store.PENDING:
                    return ALREADY
                if attempt == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def failed(self, payment: Mapping[str, Any], settled_by: str, **facts: Any) -> bool:
        """Mark a pending attempt failed (``response_code``, ``note``...); False when it was not pending."""
        return self._close(payment, "failed", settled_by, facts)

    def expired(self, payment: Mapping[str, Any], settled_by: str, note: str | None = None) -> bool:
        """Mark a pending attempt expired (never paid in time); False when it was not pending."""
        return self._close(payment, "expired", settled_by, {"note": note})

    # -- inside ------------------------------------------------------------------------------------
    def _advance(self, payment: Mapping[str, Any], facts: PaidFacts, settled_by: str) -> None:
        now = self.engine.now()

        def within(conn: Connection) -> dict[str, Any]:
            if not store.settle(conn, payment["id"], self._paid_values(facts, settled_by, now, True)):
                raise _NotPending(f"Payment {payment['txn_ref']} was already settled")
            number = self._issue_receipt(conn, payment, now)
            return {
                "paid_amount": Decimal(payment["amount"]),
                "paid_at": (facts.paid_at or now).isoformat(),
                "payment_txn_ref": payment["txn_ref"],
                "payment_receipt": number,
            }

        correlation = {"dossier_code": payment["dossier_code"]}
        self.engine.send_message(MESSAGE, correlation, {}, actor=f"payment.{settled_by}", within=within)

    def _record(self, payment: Mapping[str, Any], facts: PaidFacts, settled_by: str) -> str:
        now = self.engine.now()
        with self.engine.store.unit_of_work() as uow:
            values = {**self._paid_values(facts, settled_by, now, False), "note": REFUND_NOTE}
            if not store.settle(uow.conn, payment["id"], values):
                return ALREADY
            number = self._issue_receipt(uow.conn, payment, now)
            dossier = dossier_store.get_dossier(uow.conn, payment["dossier_code"])
            if dossier is not None and dossier["instance_id"]:
                details = {"txn_ref": payment["txn_ref"], "amount": str(payment["amount"]), "receipt": number}
                entry = {"instance_id": dossier["instance_id"], "task_id": None, "element_id": None}
                entry.update(action="payment_refund_due", actor=f"payment.{settled_by}", at=now)
                uow.add_audit([{**entry, "details": json.dumps(details, ensure_ascii=False)}])
        log.warning(
            "payment %s of dossier %s was paid after its process stopped waiting: refund %s VND (receipt %s)",
            payment["txn_ref"],
            payment["dossier_code"],
            payment["amount"],
            number,
        )
        return RECORDED

    def _close(
        self, payment: Mapping[str, Any], status: str, settled_by: str, facts: Mapping[str, Any]
    ) -> bool:
        values = {k: v for k, v in facts.items() if v is not None}
        values.update(status=status, settled_at=self.engine.now(), settled_by=settled_by)
        with self.engine.store.unit_of_work() as uow:
            return store.settle(uow.conn, payment["id"], values)

    def _status(self, payment: Mapping[str, Any]) -> str | None:
        with self.engine.store.unit_of_work(write=False) as uow:
            row = store.payment_by_ref(uow.conn, payment["txn_ref"])
        return None if row is None else str(row["status"])

    @staticmethod
    def _paid_values(facts: PaidFacts, settled_by: str, now: datetime, advanced: bool) -> dict[str, Any]:
        return {
            "status": "paid",
            "settled_at": now,
            "settled_by": settled_by,
            "response_code": facts.response_code,
            "transaction_no": facts.transaction_no,
            "bank_code": facts.bank_code,
            "paid_at": facts.paid_at or now,
            "process_advanced": advanced,
        }

    @staticmethod
    def _issue_receipt(conn: Connection, payment: Mapping[str, Any], now: datetime) -> str:
        """Issue the e-receipt of a paid attempt in the settling transaction: ``BL-<yyyy>-<nnnnnnn>``."""
        year = now.astimezone(VN).year
        number = f"BL-{year}-{store.next_receipt_number(conn, year):07d}"
        dossier = dossier_store.get_dossier(conn, payment["dossier_code"]) or {}
        payer = str((dossier.get("applicant") or {}).get("name") or dossier.get("owner") or "")
        store.insert_receipt(
            conn,
            {
                "number": number,
                "payment_id": payment["id"],
                "dossier_code": payment["dossier_code"],
                "amount": payment["amount"],
                "lines": payment["lines"],
                "payer": payer,
                "issued_at": now,
            },
        )
        return number
