"""VNPay 2.1.0 on the wire, against vectors in the published format whose signatures are computed here
independently (hmac/hashlib over the text the merchant guide describes), not with the code under test."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest

from payments import vnpay_protocol as wire
from payments.providers import InvalidNotification, PaymentOrder
from payments.vnpay import VNPayProvider

TMN = "2QXUI4J4"
SECRET = "RAOEXHYVSDDIIENYWSLDIIZTANXUXZFJ"
PAY_URL = "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html"
# 09:05:30 on 2 March 2026 in Hanoi (GMT+7) is 02:05:30 UTC.
CREATED = datetime(2026, 3, 2, 2, 5, 30, tzinfo=UTC)
EXPIRES = datetime(2026, 3, 2, 2, 20, 30, tzinfo=UTC)
ORDER = PaymentOrder(
    txn_ref="0000014H262603020001P01",
    amount=Decimal("230000"),
    order_info="Thanh toan phi le phi ho so 000.00.14.H26-260302-0001",
    client_ip="203.0.113.7",
    created_at=CREATED,
    expires_at=EXPIRES,
    return_url="https://dvc.example.vn/api/v1/payments/vnpay/return",
)
# The text the guide says is signed: vnp_ parameters sorted by name, values URL-encoded with + for spaces.
SIGNED_TEXT = (
    "vnp_Amount=23000000"
    "&vnp_Command=pay"
    "&vnp_CreateDate=20260302090530"
    "&vnp_CurrCode=VND"
    "&vnp_ExpireDate=20260302092030"
    "&vnp_IpAddr=203.0.113.7"
    "&vnp_Locale=vn"
    "&vnp_OrderInfo=Thanh+toan+phi+le+phi+ho+so+000.00.14.H26-260302-0001"
    "&vnp_OrderType=other"
    "&vnp_ReturnUrl=https%3A%2F%2Fdvc.example.vn%2Fapi%2Fv1%2Fpayments%2Fvnpay%2Freturn"
    "&vnp_TmnCode=2QXUI4J4"
    "&vnp_TxnRef=0000014H262603020001P01"
    "&vnp_Version=2.1.0"
)


def _hmac512(text: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


def _provider() -> VNPayProvider:
    return VNPayProvider(TMN, SECRET, PAY_URL, "https://sandbox.vnpayment.vn/merchant_webapi/api/transaction")


def test_the_payment_url_is_signed_as_the_guide_says():
    checkout = _provider().create_payment(ORDER)
    expected_hash = _hmac512(SIGNED_TEXT)
    assert checkout.redirect_url == f"{PAY_URL}?{SIGNED_TEXT}&vnp_SecureHash={expected_hash}"
    assert checkout.fields["vnp_SecureHash"] == expected_hash and len(expected_hash) == 128
    params = dict(parse_qsl(urlsplit(checkout.redirect_url).query, keep_blank_values=True))
    assert params["vnp_Amount"] == "23000000"  # VND x 100
    assert params["vnp_CreateDate"] == "20260302090530" and params["vnp_ExpireDate"] == "20260302092030"
    assert params["vnp_OrderInfo"] == ORDER.order_info and params["vnp_Version"] == "2.1.0"
    assert wire.verify(params, SECRET)


def test_verify_rejects_any_changed_parameter():
    params = dict(parse_qsl(urlsplit(_provider().create_payment(ORDER).redirect_url).query))
    for name in params:
        if name == "vnp_SecureHash":
            continue
        changed = {**params, name: params[name] + "1"}
        assert not wire.verify(changed, SECRET), name
    assert not wire.verify({**params, "vnp_BankCode": "NCB"}, SECRET)  # an added parameter
    assert not wire.verify({k: v for k, v in params.items() if k != "vnp_Locale"}, SECRET)  # one dropped
    assert not wire.verify({k: v for k, v in params.items() if k != "vnp_SecureHash"}, SECRET)
    assert not wire.verify({**params, "vnp_SecureHash": "é" * 128}, SECRET)  # not even ASCII
    assert wire.verify({**params, "vnp_SecureHash": params["vnp_SecureHash"].upper()}, SECRET)
    assert wire.verify({**params, "vnp_SecureHashType": "HmacSHA512", "utm_source": "x"}, SECRET)


def test_vietnamese_text_and_spaces_are_encoded_with_quote_plus():
    params = {"vnp_OrderInfo": "Thanh toán hồ sơ số 1", "vnp_TxnRef": "A1"}
    text = "vnp_OrderInfo=Thanh+to%C3%A1n+h%E1%BB%93+s%C6%A1+s%E1%BB%91+1&vnp_TxnRef=A1"
    assert wire.hash_data(params) == text
    assert wire.sign(params, SECRET) == _hmac512(text)


def test_an_ipn_in_the_published_format_verifies():
    # The parameters of a successful IPN as VNPay's guide lists them, signed over the sorted encoded text.
    ipn = {
        "vnp_Amount": "23000000",
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": "VNP14422574",
        "vnp_CardType": "ATM",
        "vnp_OrderInfo": ORDER.order_info,
        "vnp_PayDate": "20260302091015",
        "vnp_ResponseCode": "00",
        "vnp_TmnCode": TMN,
        "vnp_TransactionNo": "14422574",
        "vnp_TransactionStatus": "00",
        "vnp_TxnRef": ORDER.txn_ref,
    }
    text = "&".join(
        f"{key}={value}"
        for key, value in [
            ("vnp_Amount", "23000000"),
            ("vnp_BankCode", "NCB"),
            ("vnp_BankTranNo", "VNP14422574"),
            ("vnp_CardType", "ATM"),
            ("vnp_OrderInfo", "Thanh+toan+phi+le+phi+ho+so+000.00.14.H26-260302-0001"),
            ("vnp_PayDate", "20260302091015"),
            ("vnp_ResponseCode", "00"),
            ("vnp_TmnCode", TMN),
            ("vnp_TransactionNo", "14422574"),
            ("vnp_TransactionStatus", "00"),
            ("vnp_TxnRef", ORDER.txn_ref),
        ]
    )
    signed = {**ipn, "vnp_SecureHashType": "HmacSHA512", "vnp_SecureHash": _hmac512(text)}
    notice = _provider().verify_notification(signed)
    assert notice.paid and notice.txn_ref == ORDER.txn_ref and notice.amount == Decimal("230000")
    assert notice.paid_at == datetime(2026, 3, 2, 2, 10, 15, tzinfo=UTC)  # 09:10:15 in GMT+7
    assert notice.transaction_no == "14422574" and notice.bank_code == "NCB"
    failed = {**ipn, "vnp_ResponseCode": "24", "vnp_TransactionStatus": "02"}
    assert not _provider().verify_notification({**failed, "vnp_SecureHash": wire.sign(failed, SECRET)}).paid
    with pytest.raises(InvalidNotification):
        _provider().verify_notification({**signed, "vnp_Amount": "100"})
    other_merchant = {**ipn, "vnp_TmnCode": "OTHER001"}
    with pytest.raises(InvalidNotification):
        _provider().verify_notification(
            {**other_merchant, "vnp_SecureHash": wire.sign(other_merchant, SECRET)}
        )


def test_querydr_checksum_covers_the_documented_fields_in_order():
    request = {
        "vnp_RequestId": "a1b2c3",
        "vnp_Version": "2.1.0",
        "vnp_Command": "querydr",
        "vnp_TmnCode": TMN,
        "vnp_TxnRef": ORDER.txn_ref,
        "vnp_OrderInfo": "Truy van giao dich",
        "vnp_TransactionDate": "20260302090530",
        "vnp_CreateDate": "20260302093000",
        "vnp_IpAddr": "127.0.0.1",
    }
    text = (
        f"a1b2c3|2.1.0|querydr|{TMN}|{ORDER.txn_ref}|20260302090530|20260302093000|127.0.0.1"
        "|Truy van giao dich"
    )
    assert wire.query_checksum(request, wire.QUERY_REQUEST_FIELDS, SECRET) == _hmac512(text)


def test_dates_and_amounts():
    assert wire.vnp_time(datetime(2026, 12, 31, 17, 0, tzinfo=UTC)) == "20270101000000"  # next day in Hanoi
    assert wire.parse_vnp_time("20270101000000") == datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        wire.vnp_time(datetime(2026, 1, 1))  # naive: which zone?
    for bad in ("2026010100000", "2026013200000a", "20261301000000"):
        with pytest.raises(ValueError):
            wire.parse_vnp_time(bad)
    assert wire.vnp_amount(Decimal("230000")) == "23000000" and wire.amount_from_vnp("23000000") == 230000
    for bad_amount in (Decimal("0"), Decimal("-5"), Decimal("10.5")):
        with pytest.raises(ValueError):
            wire.vnp_amount(bad_amount)
    for bad_text in ("", "12.5", "-100", "23000050"):
        with pytest.raises(ValueError):
            wire.amount_from_vnp(bad_text)


def test_a_provider_without_its_secret_refuses_to_start():
    from payments.providers import PaymentUnavailableError

    with pytest.raises(PaymentUnavailableError, match="MOTCUA_VNPAY_HASH_SECRET"):
        VNPayProvider(TMN, None, PAY_URL, "https://x")
    with pytest.raises(PaymentUnavailableError):
        VNPayProvider("", SECRET, PAY_URL, "https://x")
