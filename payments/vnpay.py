"""The VNPay 2.1.0 provider: the signed payment URL, IPN/return verification and the ``querydr`` API.

The wire format itself (signing, dates, amounts, codes) lives in ``payments/vnpay_protocol.py``, shared with
the sandbox gateway that plays the bank.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from handlers import http

from . import vnpay_protocol as wire
from .providers import (
    FAILED,
    NOT_FOUND,
    PAID,
    PENDING,
    Checkout,
    HttpPost,
    InvalidNotification,
    Notification,
    PaymentOrder,
    PaymentUnavailableError,
    TransactionState,
)

ORDER_TYPE = "other"
QUERY_NOT_FOUND = "91"  # querydr: no such transaction at VNPay (the citizen never reached it)
MAX_ANSWER_BYTES = 64 * 1024


class VNPayProvider:
    """VNPay 2.1.0 for one merchant (terminal).

    Args:
        tmn_code: the merchant's terminal code (``vnp_TmnCode``).
        hash_secret: the merchant's secret for HMAC-SHA512; from the settings only.
        pay_url: the gateway's payment page (``.../paymentv2/vpcpay.html``).
        api_url: the transaction API (``.../merchant_webapi/api/transaction``) for ``querydr``.
        http_post: how to POST JSON (default: the standard library, no redirects).
        server_ip: ``vnp_IpAddr`` of our server in API requests.
        clock: the time source of API request dates.

    Raises:
        PaymentUnavailableError: the terminal code or the secret is missing.
    """

    name = "vnpay"

    def __init__(  # noqa: PLR0913 - the merchant's settings plus injected I/O
        self,
        tmn_code: str | None,
        hash_secret: str | None,
        pay_url: str,
        api_url: str,
        http_post: HttpPost | None = None,
        *,
        server_ip: str = "127.0.0.1",
        clock: Callable[[], datetime] | None = None,
        timeout: float = 15.0,
    ) -> None:
        if not tmn_code or not hash_secret:
            raise PaymentUnavailableError(
                "VNPay is not configured: set MOTCUA_VNPAY_TMN_CODE and MOTCUA_VNPAY_HASH_SECRET",
                provider=self.name,
            )
        self.tmn_code = tmn_code
        self._secret = hash_secret
        self.pay_url = pay_url
        self.api_url = api_url
        self.http_post = http_post or post_json
        self.server_ip = server_ip
        self.clock = clock or (lambda: datetime.now(UTC))
        self.timeout = timeout

    # -- paying ---------------------------------------------------------------------------------
    def create_payment(self, order: PaymentOrder) -> Checkout:
        """Return the signed payment URL of ``order`` (``vnp_Command=pay``).

        Raises:
            ValueError: the amount is not a positive whole number of dong, or a date is naive.
        """
        fields = {
            "vnp_Version": wire.VERSION,
            "vnp_Command": "pay",
            "vnp_TmnCode": self.tmn_code,
            "vnp_Amount": wire.vnp_amount(order.amount),
            "vnp_CurrCode": "VND",
            "vnp_TxnRef": order.txn_ref,
            "vnp_OrderInfo": order.order_info,
            "vnp_OrderType": ORDER_TYPE,
            "vnp_Locale": order.locale,
            "vnp_ReturnUrl": order.return_url,
            "vnp_IpAddr": order.client_ip,
            "vnp_CreateDate": wire.vnp_time(order.created_at),
            "vnp_ExpireDate": wire.vnp_time(order.expires_at),
        }
        query = wire.signed_query(fields, self._secret)
        return Checkout(
            f"{self.pay_url}?{query}", {**fields, "vnp_SecureHash": wire.sign(fields, self._secret)}
        )

    def verify_notification(self, params: Mapping[str, str]) -> Notification:
        """Check the signature of an IPN or return URL's parameters and read them.

        Raises:
            InvalidNotification: the signature is missing or wrong, or the terminal code is not ours.
        """
        values = {str(key): str(value) for key, value in params.items()}
        if not wire.verify(values, self._secret):
            raise InvalidNotification("The notification's vnp_SecureHash is missing or wrong")
        if values.get("vnp_TmnCode") != self.tmn_code:
            raise InvalidNotification("The notification is for another merchant")
        response_code = values.get("vnp_ResponseCode", "")
        status = values.get("vnp_TransactionStatus", "")
        return Notification(
            txn_ref=values.get("vnp_TxnRef", ""),
            amount=_amount(values.get("vnp_Amount")),
            paid=response_code == wire.PAID and status == wire.TXN_SUCCESS,
            response_code=response_code,
            transaction_status=status,
            transaction_no=values.get("vnp_TransactionNo") or None,
            bank_code=values.get("vnp_BankCode") or None,
            paid_at=_moment(values.get("vnp_PayDate")),
        )

    # -- asking -----------------------------------------------------------------------------------
    def query_transaction(self, payment: Mapping[str, Any]) -> TransactionState:
        """Ask VNPay (``querydr``) what became of a payment: paid, failed, pending or unknown there.

        Raises:
            PaymentUnavailableError: VNPay could not be reached, refused the query, or answered with a bad
                checksum or about another transaction.
        """
        txn_ref = str(payment["txn_ref"])
        request = {
            "vnp_RequestId": uuid.uuid4().hex,
            "vnp_Version": wire.VERSION,
            "vnp_Command": "querydr",
            "vnp_TmnCode": self.tmn_code,
            "vnp_TxnRef": txn_ref,
            "vnp_OrderInfo": f"Truy van giao dich {txn_ref}",
            "vnp_TransactionDate": wire.vnp_time(payment["created_at"]),
            "vnp_CreateDate": wire.vnp_time(self.clock()),
            "vnp_IpAddr": self.server_ip,
        }
        request["vnp_SecureHash"] = wire.query_checksum(request, wire.QUERY_REQUEST_FIELDS, self._secret)
        try:
            answer = self.http_post(self.api_url, request, self.timeout)
        except (OSError, ValueError) as exc:
            raise PaymentUnavailableError(f"VNPay querydr failed: {exc}", provider=self.name) from exc
        return self._read_answer(answer, txn_ref)

    def _read_answer(self, answer: Any, txn_ref: str) -> TransactionState:
        if not isinstance(answer, dict):
            raise PaymentUnavailableError("VNPay querydr answered something that is not a JSON object")
        expected = wire.query_checksum(answer, wire.QUERY_RESPONSE_FIELDS, self._secret)
        given = str(answer.get("vnp_SecureHash") or "").lower()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise PaymentUnavailableError("VNPay querydr answered with a wrong checksum", provider=self.name)
        code, message = str(answer.get("vnp_ResponseCode") or ""), str(answer.get("vnp_Message") or "")
        if code == QUERY_NOT_FOUND:
            return TransactionState(NOT_FOUND, message=message)
        if code != "00" or answer.get("vnp_TxnRef") != txn_ref:
            raise PaymentUnavailableError(f"VNPay querydr refused ({code}): {message}", provider=self.name)
        status = str(answer.get("vnp_TransactionStatus") or "")
        state = {wire.TXN_SUCCESS: PAID, wire.TXN_PENDING: PENDING}.get(status, FAILED)
        return TransactionState(
            state,
            amount=_amount(answer.get("vnp_Amount")),
            response_code=None if state == PAID else f"TS{status}"[:4],
            transaction_no=str(answer.get("vnp_TransactionNo") or "") or None,
            bank_code=str(answer.get("vnp_BankCode") or "") or None,
            paid_at=_moment(answer.get("vnp_PayDate")),
            message=message,
        )


def _amount(text: Any) -> Any:
    try:
        return wire.amount_from_vnp(str(text)) if text is not None else None
    except ValueError:
        return None


def _moment(text: Any) -> datetime | None:
    try:
        return wire.parse_vnp_time(str(text)) if text else None
    except ValueError:
        return None


def post_json(url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """POST ``body`` as JSON to an http(s) ``url`` and return the JSON object answered.

    Raises:
        ValueError: the URL is not http(s), or the answer is not a JSON object.
        OSError: the network failed, the answer was not 2xx, or it did not come within ``timeout`` seconds.
    """
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    status, raw = http.send(
        "POST", url, body=data, headers=headers, timeout=timeout, max_bytes=MAX_ANSWER_BYTES + 1
    )
    if not 200 <= status < 300:
        raise OSError(f"HTTP {status} from {url}")
    if len(raw) > MAX_ANSWER_BYTES:
        raise ValueError(f"The answer of {url} is larger than {MAX_ANSWER_BYTES} bytes")
    answer = json.loads(raw.decode("utf-8"))
    if not isinstance(answer, dict):
        raise ValueError(f"The answer of {url} is not a JSON object")
    return answer
