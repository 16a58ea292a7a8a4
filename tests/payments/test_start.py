"""Starting an online payment: who, when, for how much, and the signed VNPay URL the citizen is sent to."""

from __future__ import annotations

import threading
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest

from engine.errors import ConflictError, ForbiddenError, NotFoundError
from payments import vnpay_protocol as wire
from tests.payments.conftest import PAY_URL, SECRET, TMN, Caller, Till, ipn


def _params(started: dict) -> dict[str, str]:
    url = urlsplit(started["payment_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == PAY_URL
    return dict(parse_qsl(url.query, keep_blank_values=True))


def test_the_payment_url_carries_the_order_signed(till: Till):
    code = till.waiting_dossier("post")
    started = till.start(code)
    params = _params(started)
    assert wire.verify(params, SECRET)
    assert (
        params["vnp_Version"] == "2.1.0" and params["vnp_Command"] == "pay" and params["vnp_TmnCode"] == TMN
    )
    assert params["vnp_Amount"] == "23000000" and params["vnp_CurrCode"] == "VND"
    assert params["vnp_TxnRef"] == started["txn_ref"] == "0000014H262603020001P01"
    assert params["vnp_TxnRef"].isalnum() and len(params["vnp_TxnRef"]) <= 100
    assert (
        params["vnp_OrderInfo"] == f"Thanh toan phi le phi ho so {code}" and params["vnp_OrderInfo"].isascii()
    )
    assert params["vnp_OrderType"] == "other" and params["vnp_Locale"] == "vn"
    assert params["vnp_ReturnUrl"] == "https://dvc.example.vn/api/v1/payments/vnpay/return"
    assert params["vnp_IpAddr"] == "203.0.113.7"
    # Monday 2 March 2026, 09:00 in Hanoi; the attempt may be paid for 15 minutes.
    assert params["vnp_CreateDate"] == "20260302090000" and params["vnp_ExpireDate"] == "20260302091500"
    assert started["amount"] == Decimal("230000") and started["currency"] == "VND"
    assert [(line["code"], line["amount"]) for line in started["lines"]] == [
        ("LLTP_PHI", Decimal("200000")),
        ("BUU_CHINH", Decimal("30000")),
    ]


def test_a_pending_attempt_is_given_again_until_it_runs_short(till: Till):
    code = till.waiting_dossier()
    first = till.start(code)
    till.clock.advance(minutes=10)
    again = till.start(code)
    assert again["txn_ref"] == first["txn_ref"] and again["payment_url"] == first["payment_url"]
    assert again["reused"] is True
    till.clock.advance(minutes=4)  # one minute left: too short to pay, a new attempt starts
    fresh = till.start(code)
    assert fresh["txn_ref"].endswith("P02") and fresh["reused"] is False
    # A payment of the older attempt that still comes through is taken (and the dossier advanced once).
    assert till.service.handle_ipn(ipn(first))[0] == "00"
    assert till.service.handle_ipn(ipn(fresh)) == ("00", "Confirm Success")
    [older, newer] = till.snapshot(code)["payments"]
    assert older["process_advanced"] is True and newer["process_advanced"] is False
    assert "hoàn trả" in newer["note"]  # the second payment is to be refunded


def test_only_the_owner_pays_and_only_while_the_dossier_waits(till: Till):
    code = till.waiting_dossier(owner="citizen-1")
    with pytest.raises(NotFoundError):
        till.start(code, Caller("citizen-2"))
    with pytest.raises(ForbiddenError):
        till.start(code, Caller("desk.officer", "000.00.14.H26", frozenset({"reception"})))
    with pytest.raises(NotFoundError):
        till.start(code, Caller("desk.other", "000.01.01.H26", frozenset({"reception"})))
    started = till.start(code)
    assert till.service.handle_ipn(ipn(started))[0] == "00"
    with pytest.raises(ConflictError, match="already paid"):
        till.start(code)


def test_no_payment_before_the_desk_accepts_nor_after_the_wait_expired(till: Till):
    from dossiers.service import Submission
    from tests.dossiers.conftest import APPLICANT, LLTP_FORM

    submission = Submission(applicant=APPLICANT, delivery_method="online", form_data=LLTP_FORM)
    early = till.dossiers.submit("2.000488", submission, owner="citizen-1")["code"]
    with pytest.raises(ConflictError, match="not waiting for a payment"):
        till.start(early)
    code = till.waiting_dossier()
    till.clock.advance(days=4)
    till.engine.fire_due_timers()
    with pytest.raises(ConflictError, match="not waiting for a payment"):
        till.start(code)
    assert till.snapshot(code)["payments"] == []


def test_two_starts_at_once_open_one_attempt(till: Till):
    code = till.waiting_dossier()
    barrier = threading.Barrier(3)
    refs: list[str] = []

    def start() -> None:
        barrier.wait()
        refs.append(till.start(code)["txn_ref"])

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(refs) == 3 and len(set(refs)) == 1
    assert len(till.snapshot(code)["payments"]) == 1
