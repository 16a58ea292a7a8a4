"""The VNPay 2.1.0 wire protocol: signing and checking parameters, dates, amounts and response codes.

Pure functions, shared by the VNPay provider (our side) and the sandbox gateway (the bank's side).  From the
merchant integration guide (and ../shared/DOMAIN.md):

- payment URL and IPN/return parameters: drop ``vnp_SecureHash``/``vnp_SecureHashType``, keep the ``vnp_``
  parameters, sort the keys ascending, join ``quote_plus(key)=quote_plus(value)`` with ``&``, HMAC-SHA512 in
  lowercase hex with the merchant's secret;
- the transaction query API (``querydr``, JSON over HTTPS): HMAC-SHA512 over the values joined with ``|`` in
  the order the guide lists;
- amounts are VND x 100; dates are ``yyyyMMddHHmmss`` in GMT+7.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote_plus

VERSION = "2.1.0"
GMT7 = timezone(timedelta(hours=7), "GMT+7")
HASH_KEYS = ("vnp_SecureHash", "vnp_SecureHashType")

# IPN answers (RspCode) the gateway expects from the merchant.
RSP_CONFIRMED = "00"
RSP_ORDER_NOT_FOUND = "01"
RSP_ALREADY_CONFIRMED = "02"
RSP_INVALID_AMOUNT = "04"
RSP_BAD_CHECKSUM = "97"
RSP_OTHER = "99"
RSP_MESSAGES = {
    RSP_CONFIRMED: "Confirm Success",
    RSP_ORDER_NOT_FOUND: "Order not found",
    RSP_ALREADY_CONFIRMED: "Order already confirmed",
    RSP_INVALID_AMOUNT: "Invalid amount",
    RSP_BAD_CHECKSUM: "Invalid signature",
    RSP_OTHER: "Unknown error",
}

# vnp_ResponseCode values of a payment (a subset the sandbox plays; every other code is a failure).
PAID = "00"
CUSTOMER_CANCELLED = "24"
INSUFFICIENT_BALANCE = "51"
TIMED_OUT = "11"
RESPONSE_TEXT = {
    PAID: "Giao dịch thành công",
    CUSTOMER_CANCELLED: "Khách hàng hủy giao dịch",
    INSUFFICIENT_BALANCE: "Tài khoản không đủ số dư để thực hiện giao dịch",
    TIMED_OUT: "Đã hết hạn chờ thanh toán",
}
# vnp_TransactionStatus: 00 success, 01 not finished, 02 error.
TXN_SUCCESS = "00"
TXN_PENDING = "01"
TXN_FAILED = "02"

QUERY_REQUEST_FIELDS = (
    "vnp_RequestId",
    "vnp_Version",
    "vnp_Command",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_TransactionDate",
    "vnp_CreateDate",
    "vnp_IpAddr",
    "vnp_OrderInfo",
)
QUERY_RESPONSE_FIELDS = (
    "vnp_ResponseId",
    "vnp_Command",
    "vnp_ResponseCode",
    "vnp_Message",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_Amount",
    "vnp_BankCode",
    "vnp_PayDate",
    "vnp_TransactionNo",
    "vnp_TransactionType",
    "vnp_TransactionStatus",
    "vnp_OrderInfo",
    "vnp_PromotionCode",
    "vnp_PromotionAmount",
)


def hash_data(params: Mapping[str, object]) -> str:
    """Return the text VNPay signs for URL parameters: sorted ``quote_plus(k)=quote_plus(v)`` joined by &."""
    items = sorted(
        (str(key), "" if value is None else str(value))
        for key, value in params.items()
        if str(key).startswith("vnp_") and key not in HASH_KEYS
    )
    return "&".join(f"{quote_plus(key)}={quote_plus(value)}" for key, value in items)


def hmac_sha512(secret: str, text: str) -> str:
    """Return HMAC-SHA512 of ``text`` with ``secret``, in lowercase hex."""
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha512).hexdigest()


def sign(params: Mapping[str, object], secret: str) -> str:
    """Return ``vnp_SecureHash`` for URL parameters (payment request, IPN, return)."""
    return hmac_sha512(secret, hash_data(params))


def verify(params: Mapping[str, object], secret: str) -> bool:
    """Return whether the parameters carry a valid ``vnp_SecureHash`` (compared in constant time)."""
    given = str(params.get("vnp_SecureHash") or "").lower()
    # Bytes: compare_digest refuses str with non-ASCII characters, which anyone can send.
    return bool(given) and hmac.compare_digest(given.encode("utf-8"), sign(params, secret).encode("utf-8"))


def signed_query(params: Mapping[str, object], secret: str) -> str:
    """Return the query string of a signed request: the signed text plus ``&vnp_SecureHash=...``."""
    return f"{hash_data(params)}&vnp_SecureHash={sign(params, secret)}"


def query_checksum(values: Mapping[str, object], fields: tuple[str, ...], secret: str) -> str:
    """Return the checksum of a ``querydr`` request or response: values in ``fields`` order, |-joined."""
    text = "|".join("" if values.get(name) is None else str(values.get(name)) for name in fields)
    return hmac_sha512(secret, text)


def vnp_time(moment: datetime) -> str:
    """Return ``moment`` as VNPay writes dates: ``yyyyMMddHHmmss`` in GMT+7."""
    if moment.tzinfo is None:
        raise ValueError("VNPay dates need a timezone-aware datetime")
    return moment.astimezone(GMT7).strftime("%Y%m%d%H%M%S")


def parse_vnp_time(text: str) -> datetime:
    """Read a VNPay date (``yyyyMMddHHmmss``, GMT+7) as an aware UTC datetime.

    Raises:
        ValueError: not 14 digits of a real date and time.
    """
    if len(text) != 14 or not text.isdigit():
        raise ValueError(f"{text!r} is not a VNPay date (yyyyMMddHHmmss)")
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=GMT7).astimezone(UTC)


def vnp_amount(amount: Decimal | int) -> str:
    """Return a VND amount as VNPay carries it (x 100, no decimals).

    Raises:
        ValueError: a fraction of a dong, or not positive.
    """
    value = Decimal(amount)
    if value <= 0 or value != value.to_integral_value():
        raise ValueError(f"{amount} is not a positive whole number of dong")
    return str(int(value) * 100)


def amount_from_vnp(text: str) -> Decimal:
    """Read ``vnp_Amount`` (VND x 100) back as dong.

    Raises:
        ValueError: not a whole number of hundredths, or a fraction of a dong.
    """
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a VNPay amount")
    hundredths = int(text)
    if hundredths % 100:
        raise ValueError(f"{text!r} is not a whole number of dong")
    return Decimal(hundredths // 100)
