"""Reading a payment URL (``vnp_Command=pay``) the way VNPay's payment page does: pure checks, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from payments import vnpay_protocol as vnp

from .errors import BAD_FORMAT, BAD_SIGNATURE, EXPIRED, MERCHANT_INVALID, PaymentRefused

# Every parameter VNPay 2.1.0 requires of a payment URL (vnp_BankCode is optional).
REQUIRED = (
    "vnp_Version",
    "vnp_Command",
    "vnp_TmnCode",
    "vnp_Amount",
    "vnp_CreateDate",
    "vnp_CurrCode",
    "vnp_IpAddr",
    "vnp_Locale",
    "vnp_OrderInfo",
    "vnp_OrderType",
    "vnp_ReturnUrl",
    "vnp_TxnRef",
    "vnp_ExpireDate",
)
# Lengths the gateway (and its table) accept.
MAX_LENGTH = {"vnp_TxnRef": 64, "vnp_OrderInfo": 255, "vnp_IpAddr": 45, "vnp_ReturnUrl": 1000}
FIXED = {"vnp_Version": vnp.VERSION, "vnp_Command": "pay", "vnp_CurrCode": "VND"}
LOCALES = ("vn", "en")


@dataclass(frozen=True)
class Merchant:
    """A merchant the gateway serves: its terminal code, the secret it signs with, the name it shows."""

    tmn_code: str
    hash_secret: str
    name: str = "Cổng dịch vụ công motcua"


@dataclass(frozen=True)
class PaymentRequest:
    """A checked payment request: what the bank records of it."""

    tmn_code: str
    txn_ref: str
    amount: int  # as sent: VND x 100
    order_info: str
    return_url: str
    ip_addr: str
    create_date: str
    expire_date: str

    @property
    def dong(self) -> Decimal:
        """The amount in dong."""
        return vnp.amount_from_vnp(str(self.amount))

    def record(self) -> dict[str, object]:
        """Return the columns of ``sandbox_transactions`` that come from the request."""
        return {
            "tmn_code": self.tmn_code,
            "txn_ref": self.txn_ref,
            "amount": self.amount,
            "order_info": self.order_info,
            "return_url": self.return_url,
            "ip_addr": self.ip_addr,
            "create_date": self.create_date,
            "expire_date": self.expire_date,
        }


def read_payment_request(
    params: Mapping[str, str], merchants: Mapping[str, Merchant], now: datetime
) -> tuple[Merchant, PaymentRequest]:
    """Check a payment URL's parameters as VNPay does and return the merchant and the request.

    Args:
        params: the query parameters of the payment URL, ``vnp_SecureHash`` included.
        merchants: the merchants the gateway serves, by terminal code.
        now: the current moment (the request must not have expired).

    Raises:
        PaymentRefused: unknown merchant (02), bad signature (70), a missing or malformed parameter (03),
            or the request expired (15).
    """
    merchant = merchants.get(params.get("vnp_TmnCode", ""))
    if merchant is None:
        raise PaymentRefused(MERCHANT_INVALID, "vnp_TmnCode")
    if not vnp.verify(params, merchant.hash_secret):
        raise PaymentRefused(BAD_SIGNATURE, "vnp_SecureHash")
    _check_format(params)
    amount = _amount(params["vnp_Amount"])
    created, expires = (_date(params, name) for name in ("vnp_CreateDate", "vnp_ExpireDate"))
    if expires <= created:
        raise PaymentRefused(BAD_FORMAT, "vnp_ExpireDate")
    if now >= expires:
        raise PaymentRefused(EXPIRED, "vnp_ExpireDate")
    return merchant, PaymentRequest(
        tmn_code=merchant.tmn_code,
        txn_ref=params["vnp_TxnRef"],
        amount=amount,
        order_info=params["vnp_OrderInfo"],
        return_url=params["vnp_ReturnUrl"],
        ip_addr=params["vnp_IpAddr"],
        create_date=params["vnp_CreateDate"],
        expire_date=params["vnp_ExpireDate"],
    )


def _check_format(params: Mapping[str, str]) -> None:
    missing = [name for name in REQUIRED if not params.get(name, "").strip()]
    wrong = [name for name, value in FIXED.items() if params.get(name) != value]
    too_long = [name for name, limit in MAX_LENGTH.items() if len(params.get(name, "")) > limit]
    bad = missing + wrong + too_long
    if params.get("vnp_Locale") not in LOCALES:
        bad.append("vnp_Locale")
    if not _is_web_url(params.get("vnp_ReturnUrl", "")):
        bad.append("vnp_ReturnUrl")
    if bad:
        raise PaymentRefused(BAD_FORMAT, *sorted(set(bad)))


def _amount(text: str) -> int:
    try:
        dong = vnp.amount_from_vnp(text)
    except ValueError:
        raise PaymentRefused(BAD_FORMAT, "vnp_Amount") from None
    if dong <= 0:
        raise PaymentRefused(BAD_FORMAT, "vnp_Amount")
    return int(text)


def _date(params: Mapping[str, str], name: str) -> datetime:
    try:
        return vnp.parse_vnp_time(params[name])
    except ValueError:
        raise PaymentRefused(BAD_FORMAT, name) from None


def _is_web_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL (the browser is sent there, so nothing else will do)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
