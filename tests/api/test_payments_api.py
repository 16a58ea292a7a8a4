"""Online payment over HTTP: who may start it, the IPN endpoint, the return page that changes nothing,
and the e-receipt as a PDF with its Vietnamese text."""

from __future__ import annotations

import io
import re
import unicodedata
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from pypdf import PdfReader

from motcua.settings import Settings
from motcua.wiring import build_payments
from payments import vnpay_protocol as wire
from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, LLTP_FORM
from tests.payments.conftest import PAY_URL, Till, ipn, make_service

JUDICIAL_RECORD = "2.000488"
IPN = "/api/v1/payments/vnpay/ipn"
RETURN = "/api/v1/payments/vnpay/return"


@pytest.fixture
def till(portal: Portal) -> Till:
    """The portal with a VNPay merchant configured (its secret known to the test)."""
    service = make_service(portal.engine, portal.dossiers)
    portal.client.application.extensions["motcua.payments"] = service
    return Till(portal.engine, portal.dossiers, service, portal.clock)


def _waiting(portal: Portal, delivery_method: str = "post", *, accept: bool = True) -> str:
    body = {
        "procedure_code": JUDICIAL_RECORD,
        "applicant": APPLICANT,
        "delivery_method": delivery_method,
        "form_data": LLTP_FORM,
    }
    created = portal.call("POST", "/api/v1/dossiers", "citizen", json=body)
    assert created.status_code == 201, created.get_json()
    code = str(created.get_json()["code"])
    if accept:
        items = portal.call("GET", "/api/v1/tasks?per_page=100", "desk").get_json()["items"]
        [review] = [task for task in items if task["dossier_code"] == code]
        done = portal.call(
            "POST", f"/api/v1/tasks/{review['id']}/complete", "desk", json={"data": {"decision": "accept"}}
        )
        assert done.status_code == 200, done.get_json()
    return code


def _pdf_text(pdf: bytes) -> str:
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text))


def test_only_the_applicant_pays_and_only_while_the_dossier_waits(portal: Portal, till: Till):
    early = _waiting(portal, accept=False)
    refused = portal.call("POST", f"/api/v1/dossiers/{early}/payments", "citizen")
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    code = _waiting(portal)
    path = f"/api/v1/dossiers/{code}/payments"
    assert portal.call("POST", path).status_code == 401
    assert portal.call("POST", path, "citizen2").status_code == 404
    assert portal.call("POST", path, "desk_other").status_code == 404
    assert portal.call("POST", path, "desk").status_code == 403  # sees the dossier, is not its applicant
    started = portal.call("POST", path, "citizen")
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    assert body["payment_url"].startswith(PAY_URL + "?") and body["amount"] == 230000
    assert [line["amount"] for line in body["lines"]] == [200000, 30000]
    assert body["reused"] is False and body["status"] == "pending"
    assert body["expires_at"] == (portal.clock.now() + timedelta(minutes=15)).isoformat()
    again = portal.call("POST", path, "citizen").get_json()
    assert again["txn_ref"] == body["txn_ref"] and again["reused"] is True

    seen = portal.call("GET", path, "desk").get_json()
    assert [a["status"] for a in seen["attempts"]] == ["pending"] and seen["receipt"] is None
    assert seen["attempts"][0]["payment_url"] is None  # only the applicant is sent to pay
    assert portal.call("GET", path, "citizen").get_json()["attempts"][0]["payment_url"] == body["payment_url"]
    assert portal.call("GET", path, "citizen2").status_code == 404
    assert portal.call("GET", f"/api/v1/dossiers/{code}/receipt", "citizen").status_code == 404

    answer = portal.call("GET", f"{IPN}?{urlencode(ipn(body))}")
    assert answer.status_code == 200 and answer.get_json() == {"RspCode": "00", "Message": "Confirm Success"}
    assert portal.call("GET", f"/api/v1/dossiers/{code}", "citizen").get_json()["status"]["code"] == 4
    assert portal.call("POST", path, "citizen").status_code == 409  # already paid
    paid = portal.call("GET", path, "citizen").get_json()
    assert paid["attempts"][0]["receipt_number"] == paid["receipt"]["number"] == "BL-2026-0000001"


def test_the_e_receipt_is_a_pdf_in_vietnamese(portal: Portal, till: Till):
    code = _waiting(portal)
    started = portal.call("POST", f"/api/v1/dossiers/{code}/payments", "citizen").get_json()
    assert portal.call("POST", IPN, data=ipn(started)).get_json()["RspCode"] == "00"
    response = portal.call("GET", f"/api/v1/dossiers/{code}/receipt", "desk")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert 'filename="BL-2026-0000001.pdf"' in response.headers["Content-Disposition"]
    text = _pdf_text(response.data)
    for wanted in (
        "BIÊN LAI THU PHÍ, LỆ PHÍ ĐIỆN TỬ",
        "BL-2026-0000001",
        "Người nộp: Nguyễn Thị Hương",
        code,
        "Phí cung cấp thông tin lý lịch tư pháp",
        "Cước dịch vụ bưu chính công ích",
        "230.000 đồng",
        started["txn_ref"],
    ):
        assert wanted in text, wanted
    assert portal.call("GET", f"/api/v1/dossiers/{code}/receipt", "citizen2").status_code == 404


def test_the_return_page_shows_the_result_and_changes_nothing(portal: Portal, till: Till):
    code = _waiting(portal)
    started = portal.call("POST", f"/api/v1/dossiers/{code}/payments", "citizen").get_json()
    before = till.snapshot(code)
    shown = portal.call("GET", f"{RETURN}?{urlencode(ipn(started))}")
    assert shown.status_code == 200 and shown.mimetype == "text/html"
    page = shown.get_data(as_text=True)
    assert "Thanh toán thành công" in page and "230.000 đồng" in page and code in page
    assert "Đang chờ xác nhận" in page  # the IPN, not the browser, records the payment
    failed = portal.call("GET", f"{RETURN}?{urlencode(ipn(started, response='24', status='02'))}")
    assert "Thanh toán không thành công" in failed.get_data(as_text=True)
    assert "Khách hàng hủy giao dịch" in failed.get_data(as_text=True)
    forged = {**ipn(started), "vnp_Amount": "100"}
    bad = portal.call("GET", f"{RETURN}?{urlencode(forged)}")
    assert bad.status_code == 400 and "Dữ liệu không hợp lệ" in bad.get_data(as_text=True)
    hostile = ipn(started, vnp_OrderInfo="<script>alert(1)</script>")
    assert "<script>" not in portal.call("GET", f"{RETURN}?{urlencode(hostile)}").get_data(as_text=True)
    assert till.snapshot(code) == before
    assert till.notifications() == []  # the return page is not a notification


def test_the_ipn_endpoint_always_answers_200_json(portal: Portal, till: Till):
    code = _waiting(portal)
    started = portal.call("POST", f"/api/v1/dossiers/{code}/payments", "citizen").get_json()
    before = till.snapshot(code)
    for request in (
        portal.call("GET", IPN),
        portal.call("GET", f"{IPN}?vnp_TxnRef={started['txn_ref']}&vnp_SecureHash=00"),
        portal.call("POST", IPN, data={"vnp_Amount": "x", "vnp_SecureHash": "é"}),
        portal.call("POST", IPN, json={"vnp_TxnRef": started["txn_ref"]}),
    ):
        assert request.status_code == 200 and request.get_json() == {
            "RspCode": "97",
            "Message": "Invalid signature",
        }
    assert till.snapshot(code) == before
    signed = ipn(started)
    assert portal.call("POST", f"{IPN}?{urlencode(signed)}").get_json()["RspCode"] == "00"
    assert portal.call("POST", IPN, data=signed).get_json()["RspCode"] == "02"
    assert [n["rsp_code"] for n in till.notifications()] == ["97", "97", "97", "97", "00", "02"]


def test_without_merchant_secrets_payment_is_unavailable(portal: Portal, tmp_path: Any):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", vnpay_tmn_code="MOTCUA01")
    portal.client.application.extensions["motcua.payments"] = build_payments(
        portal.engine, portal.dossiers, settings
    )
    code = _waiting(portal)
    refused = portal.call("POST", f"/api/v1/dossiers/{code}/payments", "citizen")
    assert refused.status_code == 503 and refused.mimetype == "application/problem+json"
    assert "MOTCUA_VNPAY_HASH_SECRET" in refused.get_json()["detail"]
    assert portal.call("GET", f"{IPN}?vnp_TxnRef=X").get_json()["RspCode"] == "99"
    page = portal.call("GET", f"{RETURN}?vnp_TxnRef=X")  # nothing to verify with: it only informs
    assert page.status_code == 200 and "Chưa xác minh được" in page.get_data(as_text=True)
    assert wire.RSP_MESSAGES["99"] == "Unknown error"
