"""The bank the sandbox plays: it opens transactions, lets the customer decide them once, answers queries.

Each method is one short unit of work on the engine's store; none holds a transaction while anything is
sent over the network (the IPN goes to a server that may be this one, and would wait for our lock).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from engine.runtime import Clock
from engine.store import Store
from payments import vnpay_protocol as vnp

from . import store as q
from .errors import ALREADY_EXISTS, AlreadyDecided, ChoiceForbidden, PaymentRefused
from .payment_request import Merchant, PaymentRequest, read_payment_request
from .querydr import answer_query

BANK_CODE = "NCB"  # the test bank of VNPay's sandbox
CARD_TYPE = "ATM"
TRANSACTION_NO_BASE = 14_000_000  # VNPay's transaction numbers are eight digits and up
NOT_NUMBERED = "0"  # what VNPay sends as vnp_TransactionNo when the customer never reached a bank


@dataclass(frozen=True)
class Choice:
    """An outcome the customer may pick on the payment page.

    Attributes:
        reaches_bank: the bank saw the payment (it gets a transaction number), as opposed to the customer
            leaving the gateway before choosing a bank.
    """

    key: str
    label: str
    response_code: str
    transaction_status: str
    reaches_bank: bool


CHOICES = {
    choice.key: choice
    for choice in (
        Choice("paid", "Thanh toán thành công", vnp.PAID, vnp.TXN_SUCCESS, True),
        Choice("cancelled", "Hủy giao dịch", vnp.CUSTOMER_CANCELLED, vnp.TXN_FAILED, False),
        Choice("insufficient_balance", "Không đủ số dư", vnp.INSUFFICIENT_BALANCE, vnp.TXN_FAILED, True),
        Choice("timed_out", "Hết thời gian", vnp.TIMED_OUT, vnp.TXN_FAILED, False),
    )
}


@dataclass(frozen=True)
class Offer:
    """A pending transaction shown to the customer, with the token its choices must carry."""

    merchant: Merchant
    payment: PaymentRequest
    transaction_id: int
    token: str


@dataclass(frozen=True)
class Decision:
    """The outcome of a transaction as the gateway tells the merchant (IPN) and the browser (return URL).

    Attributes:
        params: the result parameters, unsigned.
        query: the same parameters signed, as a query string.
    """

    transaction_id: int
    params: dict[str, str]
    query: str
    return_url: str


class SandboxBank:
    """The gateway's bookkeeping, on the engine's store.

    Args:
        store: the database (its ``sandbox_transactions`` table).
        clock: the time source (the engine's, so that tests can move it).
        merchants: the merchants served.
    """

    def __init__(self, store: Store, clock: Clock, merchants: Iterable[Merchant]) -> None:
        self.store = store
        self.clock = clock
        self.merchants = {merchant.tmn_code: merchant for merchant in merchants}

    def open_payment(self, params: Mapping[str, str]) -> Offer:
        """Check a payment URL and record its transaction (pending), or find it again when repeated.

        Raises:
            PaymentRefused: the request is refused (see ``read_payment_request``), or the merchant's
                reference was already used with other parameters (01).
            AlreadyDecided: the same request again after the customer decided it.
        """
        merchant, payment = read_payment_request(params, self.merchants, self.clock.now())
        row = self._find(payment)
        if row is None:
            try:
                with self.store.unit_of_work() as uow:
                    q.insert_pending(uow.conn, payment.record(), self.clock.now())
            except IntegrityError:
                pass  # the same reference was opened meanwhile; compared below like any repeat
            row = self._find(payment)
        if row is None or _recorded(row) != payment.record():
            raise PaymentRefused(ALREADY_EXISTS, "vnp_TxnRef")
        if row.status != q.PENDING:
            raise AlreadyDecided(row.txn_ref, row.response_code)
        return Offer(merchant, payment, int(row.id), self.token_for(row))

    def decide(self, transaction_id: str, token: str, choice_key: str) -> Decision:
        """Settle a pending transaction with the customer's choice, once.

        A choice made after the request's expiry date ends the transaction as timed out, whatever it was.

        Raises:
            ChoiceForbidden: unknown transaction or choice, or a token that is not the page's.
            AlreadyDecided: the transaction was decided before.
        """
        choice = CHOICES.get(choice_key)
        if choice is None or not transaction_id.isdigit():
            raise ChoiceForbidden("Lựa chọn không hợp lệ")
        now = self.clock.now()
        with self.store.unit_of_work() as uow:
            row = q.get(uow.conn, int(transaction_id))
            if row is None or not hmac.compare_digest(token.encode(), self.token_for(row).encode()):
                raise ChoiceForbidden("Phiên thanh toán không hợp lệ")
            if row.status != q.PENDING:
                raise AlreadyDecided(row.txn_ref, row.response_code)
            if now >= vnp.parse_vnp_time(row.expire_date):
                choice = CHOICES["timed_out"]
            params = _result_params(row, choice, vnp.vnp_time(now))
            if not q.settle(uow.conn, row.id, _outcome_columns(params), now):
                raise AlreadyDecided(row.txn_ref, None)  # another choice won the race
        secret = self.merchants[row.tmn_code].hash_secret
        return Decision(int(row.id), params, vnp.signed_query(params, secret), row.return_url)

    def record_ipn_answer(self, transaction_id: int, rsp_code: str | None) -> None:
        """Keep the last ``RspCode`` the merchant answered to the IPN (None: no answer at all)."""
        with self.store.unit_of_work() as uow:
            q.record_ipn_answer(uow.conn, transaction_id, rsp_code, self.clock.now())

    def query(self, body: object) -> dict[str, str]:
        """Answer a ``querydr`` request (see ``querydr.answer_query``)."""

        def lookup(tmn_code: str, txn_ref: str) -> Any:
            with self.store.unit_of_work(write=False) as uow:
                return q.find(uow.conn, tmn_code, txn_ref)

        return answer_query(body, self.merchants, lookup, uuid.uuid4().hex)

    def token_for(self, row: Any) -> str:
        """Return the token tying the page's choices to this transaction (only the gateway can make it)."""
        secret = self.merchants[row.tmn_code].hash_secret
        text = f"sandbox-choice|{row.id}|{row.tmn_code}|{row.txn_ref}|{row.create_date}"
        return vnp.hmac_sha512(secret, text)[:64]

    def _find(self, payment: PaymentRequest) -> Any:
        with self.store.unit_of_work(write=False) as uow:
            return q.find(uow.conn, payment.tmn_code, payment.txn_ref)


def _recorded(row: Any) -> dict[str, object]:
    """Return a transaction's request columns, comparable with ``PaymentRequest.record``."""
    return {
        "tmn_code": row.tmn_code,
        "txn_ref": row.txn_ref,
        "amount": int(row.amount),
        "order_info": row.order_info,
        "return_url": row.return_url,
        "ip_addr": row.ip_addr,
        "create_date": row.create_date,
        "expire_date": row.expire_date,
    }


def _result_params(row: Any, choice: Choice, pay_date: str) -> dict[str, str]:
    """Return the parameters VNPay sends with a result (IPN and return URL), before signing."""
    number = str(TRANSACTION_NO_BASE + int(row.id)) if choice.reaches_bank else NOT_NUMBERED
    params = {
        "vnp_Amount": str(int(row.amount)),
        "vnp_BankCode": BANK_CODE,
        "vnp_CardType": CARD_TYPE,
        "vnp_OrderInfo": row.order_info,
        "vnp_PayDate": pay_date,
        "vnp_ResponseCode": choice.response_code,
        "vnp_TmnCode": row.tmn_code,
        "vnp_TransactionNo": number,
        "vnp_TransactionStatus": choice.transaction_status,
        "vnp_TxnRef": row.txn_ref,
    }
    if choice.reaches_bank:
        params["vnp_BankTranNo"] = f"VNP{number}"
    return params


def _outcome_columns(params: Mapping[str, str]) -> dict[str, Any]:
    paid = params["vnp_ResponseCode"] == vnp.PAID and params["vnp_TransactionStatus"] == vnp.TXN_SUCCESS
    number = params["vnp_TransactionNo"]
    return {
        "status": q.PAID if paid else q.FAILED,
        "response_code": params["vnp_ResponseCode"],
        "transaction_no": None if number == NOT_NUMBERED else number,
        "bank_code": params["vnp_BankCode"],
        "pay_date": params["vnp_PayDate"],
    }
