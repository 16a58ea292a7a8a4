"""The reconciliation job: ask the provider about attempts still pending after their expiry, and settle them.

A mixin of ``PaymentService``, run by the scheduler's ``reconcile_payments`` job.  An IPN may never come (the
network, the merchant's server down at the time): an attempt still pending ``GRACE`` after its expiry is
looked up at the provider (VNPay ``querydr``).  Paid there: settled exactly like a successful IPN (settled_by
``reconcile``); failed: failed; not paid (unfinished or unknown there): expired.  A provider that cannot be
reached changes nothing: the next run asks again.  Any number of workers may run it: settlements are
conditional on the attempt still pending.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from engine.facade import Engine

from . import store
from .providers import FAILED, PAID, PaymentUnavailableError, ProviderRegistry
from .settlement import ADVANCED, ALREADY, PaidFacts, Settlement

log = logging.getLogger("motcua.payments")
GRACE = timedelta(minutes=2)  # a late IPN still has this long to arrive before the job asks


class Reconciliation:
    """Settling forgotten attempts; ``PaymentService`` provides what is declared here."""

    engine: Engine
    providers: ProviderRegistry
    settlement: Settlement

    def reconcile(self, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
        """Look up and settle the attempts still pending ``GRACE`` after they expired, earliest first.

        Args:
            now: the time to judge by (default: the engine's clock).
            limit: at most this many attempts per run.

        Returns:
            How many attempts ended how: ``paid``, ``paid_refund_due``, ``failed``, ``expired``,
            ``already`` (settled meanwhile), ``unreachable`` (asked again next run), ``amount_differs``.
        """
        now = now or self.engine.now()
        with self.engine.store.unit_of_work(write=False) as uow:
            due = store.due_for_reconciliation(uow.conn, now - GRACE, limit)
        counts: Counter[str] = Counter(self._reconcile_one(payment) for payment in due)
        return dict(counts)

    def _reconcile_one(self, payment: Mapping[str, Any]) -> str:
        try:
            answer = self.providers.get(payment["provider"]).query_transaction(payment)
        except PaymentUnavailableError as exc:
            log.warning("reconciling payment %s: %s", payment["txn_ref"], exc.message)
            return "unreachable"
        if answer.state == PAID and answer.amount != payment["amount"]:
            log.error(
                "payment %s: the provider holds %s VND, not %s",
                payment["txn_ref"],
                answer.amount,
                payment["amount"],
            )
            note = f"Số tiền tại cổng thanh toán ({answer.amount}) khác số phải nộp: cần kiểm tra"
            settled = self.settlement.failed(payment, "reconcile", response_code="04", note=note)
            return "amount_differs" if settled else "already"
        if answer.state == PAID:
            facts = PaidFacts(
                response_code="00",
                transaction_no=(answer.transaction_no or "")[:40] or None,
                bank_code=(answer.bank_code or "")[:20] or None,
                paid_at=answer.paid_at,
            )
            result = self.settlement.paid(payment, facts, "reconcile")
            return {ADVANCED: "paid", ALREADY: "already"}.get(result, "paid_refund_due")
        if answer.state == FAILED:
            settled = self.settlement.failed(
                payment, "reconcile", response_code=answer.response_code, note=answer.message[:500] or None
            )
            return "failed" if settled else "already"
        note = f"Không thanh toán trước hạn ({answer.state})"
        return "expired" if self.settlement.expired(payment, "reconcile", note) else "already"
