"""The customer's choice: a signed IPN over real HTTP to the merchant, then the browser to its return URL."""

from __future__ import annotations

import socket

import pytest

from payments import vnpay_protocol as vnp
from tests.sandbox_gateway.conftest import (
    ORDER_INFO,
    RETURN_URL,
    SECRET,
    TMN_CODE,
    Sandbox,
    fast_ipn,
    location_query,
)


@pytest.mark.parametrize(
    ("choice", "response_code", "transaction_status", "status"),
    [
        ("paid", "00", "00", "paid"),
        ("cancelled", "24", "02", "failed"),
        ("insufficient_balance", "51", "02", "failed"),
        ("timed_out", "11", "02", "failed"),
    ],
)
def test_each_choice_sends_a_signed_ipn_then_redirects(
    sandbox: Sandbox, choice, response_code, transaction_status, status
):
    page = sandbox.open()
    sandbox.clock.advance(minutes=3)

    response = sandbox.choose(page, choice)

    # The merchant got exactly one IPN, over HTTP, and it verifies with the merchant's secret.
    [ipn] = sandbox.receiver.calls
    assert vnp.verify(ipn, SECRET)
    assert "vnp_SecureHashType" not in ipn  # version 2.1.0 sends none
    assert ipn["vnp_ResponseCode"] == response_code
    assert ipn["vnp_TransactionStatus"] == transaction_status
    assert ipn["vnp_TxnRef"] == "MC-0001" and ipn["vnp_TmnCode"] == TMN_CODE
    assert ipn["vnp_Amount"] == "15000000" and ipn["vnp_OrderInfo"] == ORDER_INFO
    assert ipn["vnp_BankCode"] == "NCB" and ipn["vnp_CardType"] == "ATM"
    assert ipn["vnp_PayDate"] == "20260302090300"  # GMT+7
    if choice in ("paid", "insufficient_balance"):  # the bank saw it: a transaction number
        assert ipn["vnp_TransactionNo"].isdigit() and int(ipn["vnp_TransactionNo"]) > 0
        assert ipn["vnp_BankTranNo"] == "VNP" + ipn["vnp_TransactionNo"]
    else:  # the customer left before any bank: VNPay numbers nothing
        assert ipn["vnp_TransactionNo"] == "0" and "vnp_BankTranNo" not in ipn

    # Then the browser goes to the return URL with the same signed parameters.
    assert response.status_code == 302
    assert response.headers["Location"].startswith(RETURN_URL + "&vnp_Amount=")
    returned = location_query(response)
    assert returned.pop("kenh") == "web"  # the return URL's own query is kept
    assert returned == ipn
    assert vnp.verify(returned, SECRET)

    [row] = sandbox.transactions()
    assert row["status"] == status and row["response_code"] == response_code
    assert row["pay_date"] == "20260302090300" and row["bank_code"] == "NCB"
    assert row["ipn_rsp_code"] == "00"
    expected_no = ipn["vnp_TransactionNo"] if ipn["vnp_TransactionNo"] != "0" else None
    assert row["transaction_no"] == expected_no


def test_transaction_numbers_are_unique(sandbox: Sandbox):
    for n in range(3):
        sandbox.choose(sandbox.open(sandbox.payment(txn_ref=f"MC-{n}")), "paid")
    numbers = [call["vnp_TransactionNo"] for call in sandbox.receiver.calls]
    assert len(set(numbers)) == 3


def test_a_second_choice_is_refused(sandbox: Sandbox):
    page = sandbox.open()
    assert sandbox.choose(page, "cancelled").status_code == 302

    again = sandbox.choose(page, "paid")

    assert again.status_code == 409
    assert "Giao dịch đã được xử lý" in again.text and "MC-0001" in again.text
    assert len(sandbox.receiver.calls) == 1
    [row] = sandbox.transactions()
    assert row["status"] == "failed" and row["response_code"] == "24"


def test_the_payment_url_after_the_choice_shows_it_was_decided(sandbox: Sandbox):
    params = sandbox.payment()
    sandbox.choose(sandbox.open(params), "paid")
    response = sandbox.open(params)
    assert response.status_code == 409 and "Giao dịch đã được xử lý" in response.text


def test_a_choice_without_the_pages_token_is_refused(sandbox: Sandbox):
    page = sandbox.open()
    other = sandbox.open(sandbox.payment(txn_ref="MC-0002"))
    forged = dict(token="0" * 64)
    stolen = {"token": other.text.split('name="token" value="')[1].split('"')[0]}

    for form in (forged, stolen, {"transaction": "999999"}, {"transaction": "x"}, {"token": ""}):
        response = sandbox.choose(page, "paid", **form)
        assert response.status_code == 403, form
        assert "Yêu cầu không hợp lệ" in response.text
    assert sandbox.choose(page, "refund").status_code == 403  # not a choice the page offers
    assert sandbox.receiver.calls == []
    assert {row["status"] for row in sandbox.transactions()} == {"pending"}


def test_a_choice_after_the_expiry_ends_as_timed_out(sandbox: Sandbox):
    page = sandbox.open()
    sandbox.clock.advance(minutes=16)

    response = sandbox.choose(page, "paid")

    assert response.status_code == 302
    [ipn] = sandbox.receiver.calls
    assert (ipn["vnp_ResponseCode"], ipn["vnp_TransactionStatus"]) == ("11", "02")
    assert sandbox.transactions()[0]["status"] == "failed"


def test_the_ipn_is_sent_again_until_the_merchant_confirms(sandbox: Sandbox):
    sandbox.receiver.answers = ["99", "99"]
    response = sandbox.choose(sandbox.open(), "paid")

    assert response.status_code == 302
    calls = sandbox.receiver.calls
    assert len(calls) == 3 and calls[0] == calls[1] == calls[2]  # the same notification each time
    assert sandbox.transactions()[0]["ipn_rsp_code"] == "00"


def test_already_confirmed_also_ends_the_retries(sandbox: Sandbox):
    sandbox.receiver.answers = ["02"]
    sandbox.choose(sandbox.open(), "paid")
    assert len(sandbox.receiver.calls) == 1
    assert sandbox.transactions()[0]["ipn_rsp_code"] == "02"


def test_the_last_answer_is_kept_when_the_merchant_never_confirms(sandbox: Sandbox):
    sandbox.receiver.answers = ["99", "04", "01"]
    response = sandbox.choose(sandbox.open(), "paid")
    assert response.status_code == 302  # the browser still goes back; the merchant can query
    assert len(sandbox.receiver.calls) == 3
    assert sandbox.transactions()[0]["ipn_rsp_code"] == "01"


def test_an_unreachable_merchant_does_not_keep_the_customer(sandbox: Sandbox):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sandbox.app.extensions["motcua.sandbox_gateway"].ipn_url = f"http://127.0.0.1:{closed_port}/ipn"
    fast_ipn(sandbox.app, timeout=1.0)

    response = sandbox.choose(sandbox.open(), "paid")

    assert response.status_code == 302
    [row] = sandbox.transactions()
    assert row["status"] == "paid" and row["ipn_rsp_code"] is None
