"""Notifications from the provider: the server-to-server IPN (authoritative) and the browser's return.

A mixin of ``PaymentService``.  The IPN answers exactly as VNPay expects (``RspCode``/``Message``):
97 bad or missing signature, 01 unknown order, 04 amount differs, 02 already settled (nothing changes),
00 handled (paid, or a failure recorded), 99 anything else.  The checks run in VNPay's order: signature,
order, amount, state.  Every notification, whatever its fate, is logged in ``payment_notifications`` in a
transaction of its own.  The return page only reads: it never settles anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from engine.facade import Engine

from . import store
from . import vnpay_protocol as wire
from .providers import InvalidNotification, Notification, PaymentUnavailableError, ProviderRegistry
from .settlement import ADVANCED, ALREADY, PaidFacts, Settlement

log = logging.getLogger("motcua.payments")
MAX_PARAMS = 40  # parameters kept in the notification log (VNPay sends about 13)
MAX_VALUE = 500  # characters kept of each
_OUTCOME = 100  # payment_notifications.outcome


def plain_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Return request parameters as ``{str: str}``: the first value of repeated ones, bounded in size."""
    getter = getattr(params, "get", None)
    out: dict[str, str] = {}
    for key in list(params)[:200]:
        value = getter(key) if getter is not None else params[key]
        out[str(key)] = "" if value is None else str(value)
    return out


class _Answer(Exception):
    """An IPN answered before anything changes."""

    def __init__(self, code: str, outcome: str) -> None:
        super().__init__(outcome)
        self.code = code
        self.outcome = outcome


class NotificationHandling:
    """IPN and return-page handling; ``PaymentService`` provides what is declared here."""

    engine: Engine
    providers: ProviderRegistry
    settlement: Settlement

    def handle_ipn(self, params: Mapping[str, Any], provider: str = "vnpay") -> tuple[str, str]:
        """Act on a provider's payment notification and return the answer ``(RspCode, Message)``.

        A success (``vnp_ResponseCode`` and ``vnp_TransactionStatus`` both 00) marks the attempt paid,
        issues its e-receipt and delivers ``payment.confirmed`` to the waiting instance in one transaction;
        a failure marks it failed and leaves the dossier waiting (the citizen may try again until the
        BPMN timer ends the wait).  Never raises: a surprise is logged and answered 99 (VNPay retries).
        """
        values = plain_params(params)
        try:
            code, outcome = self._ipn(values, provider)
        except PaymentUnavailableError as exc:
            code, outcome = wire.RSP_OTHER, f"unavailable: {exc.message}"
        except Exception as exc:  # the provider must always get an answer; it will notify again
            log.exception("IPN %s failed", values.get("vnp_TxnRef"))
            code, outcome = wire.RSP_OTHER, f"error: {type(exc).__name__}"
        self._log_notification(provider, values, code, outcome)
        return code, wire.RSP_MESSAGES[code]

    def _ipn(self, values: dict[str, str], provider: str) -> tuple[str, str]:
        try:
            payment, notice = self._pending_order(values, provider)
        except _Answer as answer:
            return answer.code, answer.outcome
        if notice.paid:
            return self._paid(payment, notice)
        settled = self.settlement.failed(
            payment,
            "ipn",
            response_code=notice.response_code[:4] or None,
            transaction_no=(notice.transaction_no or "")[:40] or None,
            bank_code=(notice.bank_code or "")[:20] or None,
        )
        if not settled:
            return wire.RSP_ALREADY_CONFIRMED, "already settled"
        return wire.RSP_CONFIRMED, f"failed: {notice.response_code}/{notice.transaction_status}"

    def _pending_order(self, values: dict[str, str], provider: str) -> tuple[dict[str, Any], Notification]:
        """Return the pending attempt a notification is about, checked in VNPay's order.

        Raises:
            _Answer: 97 bad signature, 01 unknown order, 04 another amount, 02 no longer pending.
        """
        try:
            notice = self.providers.get(provider).verify_notification(values)
        except InvalidNotification as exc:
            raise _Answer(wire.RSP_BAD_CHECKSUM, exc.message) from None
        with self.engine.store.unit_of_work(write=False) as uow:
            payment = store.payment_by_ref(uow.conn, notice.txn_ref) if notice.txn_ref else None
        if payment is None or payment["provider"] != provider:
            raise _Answer(wire.RSP_ORDER_NOT_FOUND, "no such order")
        if notice.amount is None or notice.amount != payment["amount"]:
            raise _Answer(wire.RSP_INVALID_AMOUNT, f"amount {notice.amount} is not {payment['amount']}")
        if payment["status"] != store.PENDING:
            raise _Answer(wire.RSP_ALREADY_CONFIRMED, f"already {payment['status']}")
        return payment, notice

    def _paid(self, payment: Mapping[str, Any], notice: Notification) -> tuple[str, str]:
        facts = PaidFacts(
            response_code=notice.response_code,
            transaction_no=(notice.transaction_no or "")[:40] or None,
            bank_code=(notice.bank_code or "")[:20] or None,
            paid_at=notice.paid_at,
        )
        result = self.settlement.paid(payment, facts, "ipn")
        if result == ALREADY:
            return wire.RSP_ALREADY_CONFIRMED, "already settled"
        if result == ADVANCED:
            return wire.RSP_CONFIRMED, "paid: process advanced"
        return wire.RSP_CONFIRMED, "paid after the wait ended: refund due"

    def _log_notification(self, provider: str, values: dict[str, str], code: str, outcome: str) -> None:
        kept = {key[:MAX_VALUE]: value[:MAX_VALUE] for key, value in list(values.items())[:MAX_PARAMS]}
        row = {
            "provider": provider,
            "received_at": self.engine.now(),
            "txn_ref": (values.get("vnp_TxnRef") or "")[:64] or None,
            "params": kept,
            "rsp_code": code,
            "outcome": outcome[:_OUTCOME],
        }
        try:
            with self.engine.store.unit_of_work() as uow:
                store.insert_notification(uow.conn, row)
        except Exception:  # the answer matters more than the log line
            log.exception("could not log the notification of %s", row["txn_ref"])

    # -- the browser's return --------------------------------------------------------------------------
    def describe_return(self, params: Mapping[str, Any], provider: str = "vnpay") -> dict[str, Any]:
        """Read the browser's return from the provider, to show it; nothing is changed.

        Returns:
            ``{"valid": False}`` when the signature does not check out; else ``valid``, ``paid`` (what the
            provider says), ``amount``, ``txn_ref``, ``dossier_code`` (None for an unknown order),
            ``response_code``, ``reason`` (Vietnamese) and ``recorded`` (our attempt's status, which only
            the IPN or the reconciliation job change).

        Raises:
            PaymentUnavailableError: the provider is not configured.
        """
        try:
            notice = self.providers.get(provider).verify_notification(plain_params(params))
        except InvalidNotification:
            return {"valid": False}
        with self.engine.store.unit_of_work(write=False) as uow:
            payment = store.payment_by_ref(uow.conn, notice.txn_ref) if notice.txn_ref else None
        reason = wire.RESPONSE_TEXT.get(notice.response_code, f"Mã phản hồi {notice.response_code}")
        return {
            "valid": True,
            "paid": notice.paid,
            "amount": notice.amount,
            "txn_ref": notice.txn_ref,
            "dossier_code": payment["dossier_code"] if payment else None,
            "response_code": notice.response_code,
            "reason": reason,
            "recorded": payment["status"] if payment else None,
        }
