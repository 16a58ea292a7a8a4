"""Level 4 on a live server: ``motcua serve`` (granian, two workers) on 127.0.0.1 with the sandbox gateway,
driven only over real HTTP, on SQLite and on PostgreSQL.

Two judicial-record dossiers go from submission to status 10: the fee is paid at the sandbox bank (its page,
the customer's choice, its signed IPN to our endpoint, the browser's return); the result of one is collected
online through the applicant's signed link, the other travels by post and is reported delivered by the post.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from tests.dossiers.conftest import APPLICANT, LLTP_FORM
from tests.live import LiveServer, running_server

ROOT = Path(__file__).resolve().parents[2]
JUDICIAL_RECORD = "2.000488"  # level 4, police of the province
POLICE = "000.00.14.H26"
PASSWORD = "mật-khẩu-thử-nghiệm-2026"
USERS = {
    "citizen": ("applicant", None, "citizen"),
    "desk": ("reception", POLICE, "desk"),
    "specialist": ("specialist", POLICE, "specialist"),
    "leader": ("leader", POLICE, "leader"),
    "post": ("integrator", None, "post"),
}


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(db_url, tmp_path, USERS, PASSWORD) as live:
        yield live


def _waiting_for_payment(live: LiveServer, delivery: str) -> str:
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": delivery}
    code = str(live.ok("POST", "/api/v1/dossiers", "citizen", expect=201, json=body)["code"])
    live.complete("citizen", code, "information", {})
    live.complete("citizen", code, "submit_online", {"form_data": LLTP_FORM})
    live.complete("desk", code, "review", {"decision": "accept"})
    assert live.status(code) == 6
    return code


def _pay_at_the_bank(live: LiveServer, code: str) -> dict[str, Any]:
    """The citizen pays: our signed URL, the bank's page, the 'paid' button, back to our return page."""
    started = live.ok("POST", f"/api/v1/dossiers/{code}/payments", "citizen", expect=201)
    assert started["payment_url"].startswith(f"{live.base}/sandbox/vnpay/paymentv2/vpcpay.html?")
    page = live.call("GET", started["payment_url"])
    assert page.status_code == 200 and "Cổng thanh toán thử nghiệm" in page.text
    forms = re.findall(r"<form[^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", page.text, flags=re.S)
    [(action, inputs)] = [(a, body) for a, body in forms if "Thanh toán thành công" in body]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', inputs))
    fields.update(re.findall(r'<button[^>]*name="(\w+)"[^>]*value="([^"]*)"', inputs))
    back = live.call("POST", action, data=fields)
    assert back.status_code == 302, back.text[:500]
    assert back.headers["Location"].startswith(f"{live.base}/api/v1/payments/vnpay/return?")
    shown = live.call("GET", back.headers["Location"])
    assert shown.status_code == 200 and "Thanh toán thành công" in shown.text and code in shown.text
    return dict(started)


def _decide(live: LiveServer, code: str) -> None:
    live.complete(
        "specialist",
        code,
        "appraise",
        {"appraisal_opinion": "Không có án tích", "draft_result": "Phiếu lý lịch tư pháp số 1"},
    )
    live.complete("leader", code, "approve", {"approval": "approve", "approval_note": ""})
    assert live.status(code) == 9


def test_a_level_4_dossier_paid_at_the_sandbox_bank_and_collected_online(server: LiveServer):
    code = _waiting_for_payment(server, "online")
    started = _pay_at_the_bank(server, code)
    # The bank's IPN (server to server) advanced the dossier; the return page only showed it.
    assert server.status(code) == 4
    payments = server.ok("GET", f"/api/v1/dossiers/{code}/payments", "citizen")
    [attempt] = payments["attempts"]
    assert (attempt["txn_ref"], attempt["status"], attempt["settled_by"]) == (
        started["txn_ref"],
        "paid",
        "ipn",
    )
    receipt = server.call("GET", f"/api/v1/dossiers/{code}/receipt", "citizen")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(receipt.content)).pages)
    assert payments["receipt"]["number"] in text and "200.000" in text

    _decide(server, code)
    link = server.ok("POST", f"/api/v1/dossiers/{code}/result-link", "citizen", expect=201)
    assert server.call("POST", f"/api/v1/dossiers/{code}/result-link", "desk").status_code == 403
    tampered = server.call("GET", link["url"].replace("sig=", "sig=0"))
    assert tampered.status_code == 403 and server.status(code) == 9
    result = server.call("GET", link["url"])
    assert result.status_code == 200 and result.content.startswith(b"%PDF")
    assert result.headers["X-Content-SHA256"] == hashlib.sha256(result.content).hexdigest()
    assert server.status(code) == 10
    assert server.call("GET", link["url"]).content == result.content and server.status(code) == 10


def test_a_level_4_dossier_paid_at_the_sandbox_bank_and_delivered_by_post(server: LiveServer):
    code = _waiting_for_payment(server, "post")
    started = _pay_at_the_bank(server, code)
    assert started["amount"] == 230000  # the fee and the postage
    assert server.status(code) == 4
    _decide(server, code)
    order = server.ok("GET", f"/api/v1/dossiers/{code}/postal-order", "citizen")
    assert order["status"] == "registered" and re.fullmatch(r"EB\d{9}VN", order["tracking_number"])
    events = f"/api/v1/postal-orders/{order['tracking_number']}/events"
    server.ok("POST", events, "post", expect=201, json={"status": "collecting"})
    assert server.status(code) == 9  # decided, not yet handed over
    assert server.call("POST", events, "post", json={"status": "registered"}).status_code in (409, 422)
    server.ok("POST", events, "post", expect=201, json={"status": "delivered"})
    assert server.status(code) == 10
    assert server.ok("GET", f"/api/v1/dossiers/{code}/postal-order", "citizen")["status"] == "delivered"
