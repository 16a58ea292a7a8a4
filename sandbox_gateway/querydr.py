"""The answer of the transaction query API (``vnp_Command=querydr``), as VNPay gives it: pure, no I/O."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any

from payments import vnpay_protocol as vnp

from .payment_request import Merchant
from .store import FAILED, PAID, PENDING

QUERY_OK = "00"
QUERY_MERCHANT_INVALID = "02"
QUERY_BAD_FORMAT = "03"
QUERY_NOT_FOUND = "91"
QUERY_BAD_CHECKSUM = "97"
QUERY_MESSAGES = {
    QUERY_OK: "QueryDR Success",
    QUERY_MERCHANT_INVALID: "Merchant invalid",
    QUERY_BAD_FORMAT: "Invalid request format",
    QUERY_NOT_FOUND: "Transaction not found",
    QUERY_BAD_CHECKSUM: "Invalid checksum",
}
PAYMENT_TRANSACTION = "01"  # vnp_TransactionType of a payment
TRANSACTION_STATUS = {PENDING: vnp.TXN_PENDING, PAID: vnp.TXN_SUCCESS, FAILED: vnp.TXN_FAILED}

Row = Any
Lookup = Callable[[str, str], Row | None]


def answer_query(
    body: object, merchants: Mapping[str, Merchant], lookup: Lookup, response_id: str
) -> dict[str, str]:
    """Return VNPay's JSON answer to a ``querydr`` request.

    Args:
        body: the request's JSON document (anything else is a malformed request).
        merchants: the merchants the gateway serves, by terminal code.
        lookup: finds a transaction by terminal code and ``vnp_TxnRef``.
        response_id: the ``vnp_ResponseId`` of this answer.

    Returns:
        Every field of ``QUERY_RESPONSE_FIELDS`` (empty when it does not apply) and ``vnp_SecureHash`` over
        them, signed with the merchant's secret (empty when the merchant is unknown).
    """
    values: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    echo = {
        "vnp_ResponseId": response_id,
        "vnp_Command": "querydr",
        "vnp_TmnCode": _text(values.get("vnp_TmnCode")),
        "vnp_TxnRef": _text(values.get("vnp_TxnRef")),
    }
    merchant = merchants.get(echo["vnp_TmnCode"])
    if merchant is None:
        return _answer(echo, QUERY_MERCHANT_INVALID, None)
    code, row = _look_up(values, merchant, lookup)
    found = _transaction_fields(row) if row is not None else {}
    return _answer({**echo, **found}, code, merchant.hash_secret)


def _look_up(values: Mapping[str, Any], merchant: Merchant, lookup: Lookup) -> tuple[str, Row | None]:
    expected = vnp.query_checksum(values, vnp.QUERY_REQUEST_FIELDS, merchant.hash_secret)
    given = _text(values.get("vnp_SecureHash")).lower().encode("utf-8")
    if not hmac.compare_digest(given, expected.encode("ascii")):
        return QUERY_BAD_CHECKSUM, None
    if not _well_formed(values):
        return QUERY_BAD_FORMAT, None
    row = lookup(merchant.tmn_code, values["vnp_TxnRef"])
    # VNPay finds a payment by its reference and the date the merchant created it (vnp_CreateDate of pay).
    if row is None or row.create_date != values["vnp_TransactionDate"]:
        return QUERY_NOT_FOUND, None
    return QUERY_OK, row


def _well_formed(values: Mapping[str, Any]) -> bool:
    texts = [values.get(name) for name in vnp.QUERY_REQUEST_FIELDS]
    if not all(isinstance(value, str) and value for value in texts):
        return False
    if values["vnp_Version"] != vnp.VERSION or values["vnp_Command"] != "querydr":
        return False
    if len(values["vnp_RequestId"]) > 32:
        return False
    try:
        vnp.parse_vnp_time(values["vnp_TransactionDate"])
        vnp.parse_vnp_time(values["vnp_CreateDate"])
    except ValueError:
        return False
    return True


def _transaction_fields(row: Row) -> dict[str, str]:
    failed_unnumbered = row.status == FAILED and not row.transaction_no
    return {
        "vnp_Amount": str(int(row.amount)),
        "vnp_BankCode": row.bank_code or "",
        "vnp_PayDate": row.pay_date or "",
        "vnp_TransactionNo": "0" if failed_unnumbered else row.transaction_no or "",
        "vnp_TransactionType": PAYMENT_TRANSACTION,
        "vnp_TransactionStatus": TRANSACTION_STATUS[row.status],
        "vnp_OrderInfo": row.order_info,
    }


def _answer(fields: Mapping[str, str], code: str, secret: str | None) -> dict[str, str]:
    answer = dict.fromkeys(vnp.QUERY_RESPONSE_FIELDS, "")
    answer.update(fields)
    answer["vnp_ResponseCode"] = code
    answer["vnp_Message"] = QUERY_MESSAGES[code]
    answer["vnp_SecureHash"] = vnp.query_checksum(answer, vnp.QUERY_RESPONSE_FIELDS, secret) if secret else ""
    return answer


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
