"""The payment service: the citizen starts an online payment of a dossier waiting for it; reads and receipts.

``PaymentService`` is built on two mixins: notifications from the provider (``payments/ipn.py``) and the
reconciliation job (``payments/reconcile.py``); settling an attempt is ``payments/settlement.py``.  The
amount is what the process asked for (``payment_request`` of ``handlers/dossier_ops.py``: the fee lines,
with the postage when the result goes by post), never a number the browser sends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from dossiers import store as dossier_store
from dossiers.access import Caller, check_see
from dossiers.service import DossierService
from dossiers.status import Status
from engine.errors import ConflictError, ForbiddenError, NotFoundError
from engine.facade import Engine
from engine.store import UnitOfWork

from . import store
from .fees import CURRENCY, payment_lines, whole_dong
from .ipn import NotificationHandling
from .providers import PaymentOrder, ProviderRegistry
from .receipt_pdf import render_receipt
from .reconcile import Reconciliation
from .settlement import MESSAGE, Settlement

RETURN_PATH = "/api/v1/payments/vnpay/return"
# A pending attempt is given again while at least this much of its time is left; else a new one starts.
REUSE_MARGIN = timedelta(minutes=2)
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")


def txn_ref_for(dossier_code: str, sequence: int) -> str:
    """Return the unique reference of a dossier's ``sequence``-th attempt, in letters and digits only
    (VNPay's ``vnp_TxnRef`` is alphanumeric).

    Example: ``000.00.14.H26-260302-0001``, 2 → ``0000014H262603020001P02``.
    """
    return f"{_NOT_ALNUM.sub('', dossier_code)[-56:]}P{sequence:02d}"


def order_info_for(dossier_code: str) -> str:
    """Return ``vnp_OrderInfo``: Vietnamese without diacritics or special characters, naming the dossier."""
    return f"Thanh toan phi le phi ho so {dossier_code}"


class PaymentService(NotificationHandling, Reconciliation):
    """Online payment of dossier fees.

    Args:
        engine: the engine facade (the waiting instance gets ``payment.confirmed`` through it).
        dossiers: the dossier service (dossiers, their procedures and who may see them).
        providers: the provider of each agency.
        public_url: where this server is reached from the browser (the return URL is built on it).
        attempt_minutes: how long an attempt may be paid (``vnp_ExpireDate``).
    """

    def __init__(
        self,
        engine: Engine,
        dossiers: DossierService,
        providers: ProviderRegistry,
        *,
        public_url: str = "http://127.0.0.1:8000",
        attempt_minutes: float = 15.0,
    ) -> None:
        self.engine = engine
        self.dossiers = dossiers
        self.providers = providers
        self.public_url = public_url.rstrip("/")
        self.attempt = timedelta(minutes=attempt_minutes)
        self.settlement = Settlement(engine)

    # -- starting ------------------------------------------------------------------------------------
    def start_payment(self, code: str, caller: Caller, client_ip: str) -> dict[str, Any]:
        """Open (or give again) an attempt to pay a dossier's fees online; return where to pay.

        Only the applicant who owns the dossier pays, and only while its process waits for the payment
        (status 6).  A pending attempt with time left is given again rather than a second one opened.

        Returns:
            ``{"payment_url", "txn_ref", "amount", "currency", "lines", "expires_at", "status", "reused"}``.

        Raises:
            NotFoundError: no such dossier, or the caller may not see it.
            ForbiddenError: the caller sees it but is not its applicant.
            ConflictError: already paid, or the dossier does not wait for a payment.
            PaymentUnavailableError: the agency's provider is not configured.
        """
        dossier = self.dossiers.dossier(code)
        check_see(caller, dossier)
        if dossier["owner"] != caller.username:
            raise ForbiddenError("Only the applicant pays the dossier's fees")
        name = self.providers.name_for(dossier["agency_code"])
        provider = self.providers.get(name)
        lines, amount = self._owed(dossier)
        now = self.engine.now()
        with self.engine.store.unit_of_work() as uow:
            attempts = self._payable(uow, code)
            reuse = next(
                (
                    a
                    for a in reversed(attempts)
                    if a["status"] == store.PENDING
                    and a["payment_url"]
                    and a["amount"] == amount
                    and a["expires_at"] - now >= REUSE_MARGIN
                ),
                None,
            )
            if reuse is not None:
                return _started(reuse, reused=True)
            order = PaymentOrder(
                txn_ref=txn_ref_for(code, len(attempts) + 1),
                amount=amount,
                order_info=order_info_for(code),
                client_ip=client_ip or "127.0.0.1",
                created_at=now,
                expires_at=now + self.attempt,
                return_url=self.public_url + RETURN_PATH,
            )
            checkout = provider.create_payment(order)
            values = {
                "txn_ref": order.txn_ref,
                "dossier_code": code,
                "provider": name,
                "amount": amount,
                "currency": CURRENCY,
                "lines": lines,
                "status": store.PENDING,
                "created_at": now,
                "expires_at": order.expires_at,
                "process_advanced": False,
                "payment_url": checkout.redirect_url,
            }
            store.insert_payment(uow.conn, values)
        return _started(values, reused=False)

    def _payable(self, uow: UnitOfWork, code: str) -> list[dict[str, Any]]:
        """Lock the dossier and return its attempts, if it may be paid now.

        Raises:
            ConflictError: already paid, or its process does not wait for the payment.
        """
        locked = dossier_store.get_dossier(uow.conn, code, for_update=True)
        attempts = store.payments_of(uow.conn, code)
        if any(a["status"] == "paid" for a in attempts):
            raise ConflictError(f"The fees of dossier {code} are already paid", dossier_code=code)
        waiting = uow.find_subscriptions(MESSAGE, {"dossier_code": code})
        if locked is None or locked["status"] != Status.FINANCIAL_OBLIGATION or not waiting:
            raise ConflictError(f"Dossier {code} is not waiting for a payment", dossier_code=code)
        return attempts

    def _owed(self, dossier: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Decimal]:
        """Return the lines and amount the dossier's process asked to be paid (``payment_request``)."""
        code = dossier["code"]
        data = self.engine.show(dossier["instance_id"])["data"] if dossier["instance_id"] else {}
        request = data.get("payment_request")
        if isinstance(request, Mapping) and request.get("amount") is not None:
            amount = whole_dong(request["amount"])
            lines = [
                {**line, "amount": whole_dong(line["amount"])}
                for line in request.get("lines") or ()
                if isinstance(line, Mapping)
            ] or [{"code": None, "description": "Phí, lệ phí", "amount": amount}]
        else:
            lines, amount = payment_lines(data.get("fees"))
        if amount <= 0:
            raise ConflictError(f"Dossier {code} has nothing to pay online", dossier_code=code)
        return lines, amount

    # -- reading -------------------------------------------------------------------------------------
    def payments(self, code: str, caller: Caller) -> dict[str, Any]:
        """Return a dossier's attempts (oldest first) and its e-receipt, for whoever may see the dossier.

        Raises:
            NotFoundError: no such dossier, or the caller may not see it.
        """
        dossier = self.dossiers.dossier(code)
        check_see(caller, dossier)
        with self.engine.store.unit_of_work(write=False) as uow:
            attempts = store.payments_of(uow.conn, code)
            receipt = store.receipt_of(uow.conn, code)
        own = dossier["owner"] == caller.username
        for attempt in attempts:
            if not (own and attempt["status"] == store.PENDING):
                attempt["payment_url"] = None  # only the payer is sent to pay, and only while pending
        return {"dossier_code": code, "attempts": attempts, "receipt": receipt}

    def receipt_pdf(self, code: str, caller: Caller) -> tuple[str, bytes]:
        """Return the number and the PDF of a dossier's e-receipt.

        Raises:
            NotFoundError: no such dossier, the caller may not see it, or it has no e-receipt yet.
        """
        dossier = self.dossiers.dossier(code)
        check_see(caller, dossier)
        with self.engine.store.unit_of_work(write=False) as uow:
            receipt = store.receipt_of(uow.conn, code)
        if receipt is None:
            raise NotFoundError(f"Dossier {code} has no e-receipt yet", dossier_code=code)
        procedure = self.dossiers.typed_procedure(dossier["procedure_code"])
        return str(receipt["number"]), render_receipt(receipt, dossier, procedure)


def _started(attempt: Mapping[str, Any], *, reused: bool) -> dict[str, Any]:
    expires_at: datetime = attempt["expires_at"]
    return {
        "payment_url": attempt["payment_url"],
        "txn_ref": attempt["txn_ref"],
        "amount": attempt["amount"],
        "currency": attempt["currency"],
        "lines": attempt["lines"],
        "expires_at": expires_at,
        "status": attempt["status"],
        "reused": reused,
    }
