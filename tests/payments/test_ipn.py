"""VNPay's IPN against our payments, on SQLite and PostgreSQL: each RspCode, and what it does or leaves alone.

"Nothing changes" is checked on the payment rows, the dossier status, the instance's row version and its audit
trail, and the e-receipts.  Every notification, whatever its answer, is logged.
"""

from __future__ import annotations

import threading
from decimal import Decimal

from dossiers.status import Status
from payments import vnpay_protocol as wire
from tests.payments.conftest import SECRET, Caller, Till, ipn


def test_a_bad_or_missing_signature_is_97_and_changes_nothing(till: Till):
    code = till.waiting_dossier()
    started = till.start(code)
    before = till.snapshot(code)
    forged = ipn(started)
    forged["vnp_Amount"] = "100"  # changed after signing
    assert till.service.handle_ipn(forged) == ("97", "Invalid signature")
    unsigned = ipn(started)
    del unsigned["vnp_SecureHash"]
    assert till.service.handle_ipn(unsigned) == ("97", "Invalid signature")
    other_secret = {**ipn(started), "vnp_SecureHash": wire.sign(ipn(started), "another-merchant")}
    assert till.service.handle_ipn(other_secret)[0] == "97"
    assert till.service.handle_ipn({})[0] == "97"
    assert till.snapshot(code) == before
    assert [n["rsp_code"] for n in till.notifications()] == ["97", "97", "97", "97"]
    assert till.notifications()[0]["txn_ref"] == started["txn_ref"]


def test_a_wrong_amount_is_04_and_changes_nothing(till: Till):
    code = till.waiting_dossier()
    started = till.start(code)
    before = till.snapshot(code)
    short = ipn(started, vnp_Amount=wire.vnp_amount(started["amount"] - 1))
    assert till.service.handle_ipn(short) == ("04", "Invalid amount")
    fraction = ipn(started, vnp_Amount=str(int(started["amount"]) * 100 + 50))
    assert till.service.handle_ipn(fraction) == ("04", "Invalid amount")
    assert till.snapshot(code) == before
    assert before["payments"][0]["status"] == "pending"


def test_an_unknown_order_is_01(till: Till):
    code = till.waiting_dossier()
    started = till.start(code)
    before = till.snapshot(code)
    unknown = ipn({**started, "txn_ref": "NOSUCHORDER01"})
    assert till.service.handle_ipn(unknown) == ("01", "Order not found")
    assert till.snapshot(code) == before
    assert till.notifications()[-1]["outcome"] == "no such order"


def test_a_success_advances_the_process_once_with_an_e_receipt(till: Till):
    code = till.waiting_dossier("post")
    started = till.start(code)
    assert started["amount"] == Decimal("230000")  # 200.000 fee + 30.000 postage
    before = till.snapshot(code)
    assert till.service.handle_ipn(ipn(started)) == ("00", "Confirm Success")
    after = till.snapshot(code)
    [payment] = after["payments"]
    assert payment["status"] == "paid" and payment["process_advanced"] is True
    assert payment["settled_by"] == "ipn" and payment["response_code"] == "00"
    assert payment["transaction_no"] == "14422574" and payment["bank_code"] == "NCB"
    assert payment["paid_at"] == wire.parse_vnp_time("20260302094512")
    assert after["status"] == Status.PROCESSING and after["receipts"] == 1
    assert after["row_version"] == before["row_version"] + 1
    data = till.engine.show(till.dossiers.dossier(code)["instance_id"])["data"]
    assert data["payment_outcome"] == "paid" and data["paid_amount"] == Decimal("230000")
    assert data["payment_txn_ref"] == started["txn_ref"] and data["payment_receipt"] == "BL-2026-0000001"
    assert till.audit_actions(code).count("message_received") == 1
    # The dossier's clock stood still while it waited for the fees.
    assert [p["reason"] for p in till.dossiers.dossier(code)["pauses"]] == ["payment"]

    # VNPay repeats the IPN until it gets 00: the repeats are 02 and advance nothing.
    assert till.service.handle_ipn(ipn(started)) == ("02", "Order already confirmed")
    assert till.service.handle_ipn(ipn(started, response="24", status="02"))[0] == "02"
    assert till.snapshot(code) == after
    assert [n["rsp_code"] for n in till.notifications()] == ["00", "02", "02"]


def test_a_failed_payment_is_recorded_and_the_dossier_waits_for_another_attempt(till: Till):
    code = till.waiting_dossier("online")
    first = till.start(code)
    assert first["amount"] == Decimal("200000")  # no postage when the result goes online
    before = till.snapshot(code)
    assert till.service.handle_ipn(ipn(first, response="24", status="02")) == ("00", "Confirm Success")
    after = till.snapshot(code)
    [payment] = after["payments"]
    assert payment["status"] == "failed" and payment["response_code"] == "24"
    assert payment["process_advanced"] is False
    assert {k: after[k] for k in ("status", "row_version", "audit", "receipts")} == {
        k: before[k] for k in ("status", "row_version", "audit", "receipts")
    }
    # The citizen tries again: a new attempt with a new reference, which then succeeds.
    second = till.start(code)
    assert second["txn_ref"] != first["txn_ref"] and second["txn_ref"].endswith("P02")
    assert till.service.handle_ipn(ipn(second)) == ("00", "Confirm Success")
    assert till.dossiers.dossier(code)["status"] == Status.PROCESSING
    assert till.service.handle_ipn(ipn(first)) == ("02", "Order already confirmed")


def test_two_identical_ipns_at_once_advance_the_process_once(till: Till):
    code = till.waiting_dossier()
    started = till.start(code)
    notification = ipn(started)
    barrier = threading.Barrier(4)
    answers: list[tuple[str, str]] = []

    def deliver() -> None:
        barrier.wait()
        answers.append(till.service.handle_ipn(dict(notification)))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(code for code, _ in answers) == ["00", "02", "02", "02"]
    after = till.snapshot(code)
    assert after["receipts"] == 1 and after["payments"][0]["process_advanced"] is True
    assert till.audit_actions(code).count("message_received") == 1
    assert after["status"] == Status.PROCESSING


def test_money_paid_after_the_wait_expired_is_recorded_for_a_refund(till: Till):
    code = till.waiting_dossier()
    started = till.start(code)
    till.clock.advance(days=4)
    [fired] = till.engine.fire_due_timers()
    assert fired["element_id"] == "payment_expiry"
    assert till.dossiers.dossier(code)["status"] == Status.STOPPED
    before = till.snapshot(code)
    assert till.service.handle_ipn(ipn(started)) == ("00", "Confirm Success")
    after = till.snapshot(code)
    [payment] = after["payments"]
    assert payment["status"] == "paid" and payment["process_advanced"] is False
    assert "hoàn trả" in payment["note"]
    assert after["status"] == Status.STOPPED and after["receipts"] == 1
    assert after["row_version"] == before["row_version"]  # the process was not touched
    assert till.audit_actions(code)[-1] == "payment_refund_due"
    assert till.notifications()[-1]["outcome"] == "paid after the wait ended: refund due"
    assert till.service.handle_ipn(ipn(started))[0] == "02"


def test_an_ipn_without_a_configured_merchant_is_99(till: Till):
    code = till.waiting_dossier()
    started = till.start(code)
    before = till.snapshot(code)
    till.service.providers.factories["vnpay"] = _unconfigured
    till.service.providers._built.clear()
    assert till.service.handle_ipn(ipn(started)) == ("99", "Unknown error")
    assert till.snapshot(code) == before
    assert till.notifications()[-1]["outcome"].startswith("unavailable: VNPay is not configured")


def _unconfigured():
    from payments.vnpay import VNPayProvider

    return VNPayProvider(None, None, "https://x", "https://y")


def test_ipn_signature_uses_the_merchant_secret_only(till: Till):
    code = till.waiting_dossier()
    started = till.start(code)
    signed = ipn(started)
    assert wire.verify(signed, SECRET) and not wire.verify(signed, SECRET + "x")
    # Officials cannot pay someone else's dossier; the owner's attempt is the one the IPN settles.
    desk = Caller("desk.officer", "000.00.14.H26", frozenset({"reception"}))
    assert till.service.payments(code, desk)["attempts"][0]["payment_url"] is None
