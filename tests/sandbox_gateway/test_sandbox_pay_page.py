"""The payment page: what a correctly signed URL shows, and every request VNPay would refuse."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC

import pytest

from payments import vnpay_protocol as vnp
from tests.sandbox_gateway.conftest import ORDER_INFO, PAY_PATH, SECRET, TMN_CODE, Sandbox


def test_signed_url_shows_the_bank_page_in_vietnamese(sandbox: Sandbox):
    response = sandbox.open()

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.text
    assert '<html lang="vi">' in page and '<meta charset="utf-8">' in page
    assert "Cổng thanh toán thử nghiệm — không dùng tiền thật" in page
    assert "150.000 ₫" in page
    assert ORDER_INFO in page and TMN_CODE in page and "MC-0001" in page
    assert "09:15:00 ngày 02/03/2026 (GMT+7)" in page  # the expiry date, in Viet Nam time
    for label in ("Thanh toán thành công", "Hủy giao dịch", "Không đủ số dư", "Hết thời gian"):
        assert f">{label}</button>" in page
    assert page.count('<form method="post" action="/sandbox/vnpay/paymentv2/choice">') == 4
    # Each button is described by the response code it plays.
    assert 'aria-describedby="hint-insufficient_balance"' in page and "Mã phản hồi 51" in page
    # Self-contained: no scripts, no external stylesheets or images, and the policy says so.
    assert "<script" not in page and "<link" not in page and "<img" not in page
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"default-src 'none'; style-src 'sha256-{digest}';" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"

    [row] = sandbox.transactions()
    assert row["status"] == "pending" and row["tmn_code"] == TMN_CODE and row["txn_ref"] == "MC-0001"
    assert int(row["amount"]) == 15_000_000  # as sent: VND x 100
    assert row["order_info"] == ORDER_INFO and row["ip_addr"] == "203.0.113.7"


def test_the_page_escapes_what_the_merchant_sent(sandbox: Sandbox):
    params = sandbox.payment(vnp_OrderInfo='<script>alert("x")</script> & phí')
    page = sandbox.open(params).text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; phí" in page


def test_the_same_request_again_shows_the_same_page(sandbox: Sandbox):
    params = sandbox.payment()
    first = sandbox.open(params)
    again = sandbox.open(params)
    assert first.status_code == again.status_code == 200
    assert first.text == again.text
    assert len(sandbox.transactions()) == 1


def test_the_same_reference_with_other_parameters_is_refused(sandbox: Sandbox):
    sandbox.open(sandbox.payment(amount=150_000))
    response = sandbox.open(sandbox.payment(amount=200_000))
    assert response.status_code == 400
    assert "Giao dịch đã tồn tại" in response.text and "Mã lỗi: 01" in response.text
    [row] = sandbox.transactions()
    assert int(row["amount"]) == 15_000_000


def test_a_tampered_url_is_refused_and_nothing_recorded(sandbox: Sandbox):
    signed = vnp.signed_query(sandbox.payment(amount=150_000), SECRET)
    tampered = signed.replace("vnp_Amount=15000000", "vnp_Amount=100")
    assert tampered != signed

    response = sandbox.client.get(f"{PAY_PATH}?{tampered}")

    assert response.status_code == 400
    assert "Sai chữ ký" in response.text and "Mã lỗi: 70" in response.text
    assert sandbox.transactions() == []


def test_a_url_signed_with_another_secret_is_refused(sandbox: Sandbox):
    response = sandbox.open(secret="không-phải-bí-mật-của-đơn-vị")
    assert response.status_code == 400 and "Sai chữ ký" in response.text
    assert sandbox.transactions() == []


def test_an_unsigned_or_strangely_signed_url_is_refused(sandbox: Sandbox):
    query = vnp.hash_data(sandbox.payment())
    assert "Sai chữ ký" in sandbox.client.get(f"{PAY_PATH}?{query}").text
    assert "Sai chữ ký" in sandbox.client.get(f"{PAY_PATH}?{query}&vnp_SecureHash=%C3%A9").text
    assert sandbox.transactions() == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"vnp_TmnCode": "KHACTMN1"}, "02"),
        ({"vnp_Version": "2.0.1"}, "03"),
        ({"vnp_Command": "refund"}, "03"),
        ({"vnp_CurrCode": "USD"}, "03"),
        ({"vnp_Amount": "0"}, "03"),
        ({"vnp_Amount": "15000050"}, "03"),  # half a dong
        ({"vnp_Amount": "-100"}, "03"),
        ({"vnp_TxnRef": ""}, "03"),
        ({"vnp_ReturnUrl": ""}, "03"),
        ({"vnp_ReturnUrl": "javascript:alert(1)"}, "03"),
        ({"vnp_Locale": "fr"}, "03"),
        ({"vnp_CreateDate": "2026-03-02 09:00"}, "03"),
        ({"vnp_ExpireDate": "20260231090000"}, "03"),  # no such day
        ({"vnp_ExpireDate": "20260302085900"}, "03"),  # before it was created
        ({"vnp_ExpireDate": "20260302090000"}, "03"),
    ],
)
def test_requests_vnpay_refuses_are_refused_and_not_recorded(sandbox: Sandbox, overrides, code):
    response = sandbox.open(sandbox.payment(**overrides))
    assert response.status_code == 400, response.text
    assert f"Mã lỗi: {code}" in response.text
    assert sandbox.transactions() == []


def test_an_expired_request_is_refused(sandbox: Sandbox):
    params = sandbox.payment()
    sandbox.clock.advance(minutes=15)
    response = sandbox.open(params)
    assert response.status_code == 400
    assert "Giao dịch đã quá thời gian chờ thanh toán" in response.text
    assert sandbox.transactions() == []


def test_a_request_just_before_its_expiry_is_shown(sandbox: Sandbox):
    params = sandbox.payment()
    sandbox.clock.advance(minutes=15, seconds=-1)
    assert sandbox.open(params).status_code == 200


def test_dates_are_read_in_viet_nam_time(sandbox: Sandbox):
    # It is 09:00 in Ha Noi, 02:00 UTC: a request dated in UTC digits expired seven hours ago.
    assert sandbox.clock.now().astimezone(UTC).hour == 2
    params = sandbox.payment(vnp_CreateDate="20260302020000", vnp_ExpireDate="20260302021500")
    assert "Mã lỗi: 15" in sandbox.open(params).text
