"""Level 4 on a live server: ``motcua serve`` (gunicorn, two workers) on 127.0.0.1 with the sandbox gateway,
driven only over real HTTP, on SQLite and on PostgreSQL.

Two judicial-record dossiers go from submission to status 10: the fee is paid at the sandbox bank (its page,
the customer's choice, its signed IPN to our endpoint, the browser's return); the result of one is collected
online through the applicant's signed link, the other travels by post and is reported delivered by the post.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from argon2 import PasswordHasher
from pypdf import PdfReader

from accounts.service import Accounts
from motcua.bundle import bundled_bpmn
from motcua.settings import Settings
from motcua.wiring import build_dossiers, build_engine
from tests.dossiers.conftest import APPLICANT, LLTP_FORM

ROOT = Path(__file__).resolve().parents[2]
JUDICIAL_RECORD = "2.000488"  # level 4, police of the province
POLICE = "000.00.14.H26"
PASSWORD = "mật-khẩu-thử-nghiệm-2026"
USERS = {
    "citizen": ("applicant", None),
    "desk": ("reception", POLICE),
    "specialist": ("specialist", POLICE),
    "leader": ("leader", POLICE),
    "post": ("integrator", None),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base: str
    tokens: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, user: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        url = path if path.startswith("http") else self.base + path
        return requests.request(method, url, headers=headers, timeout=30, allow_redirects=False, **kwargs)

    def ok(self, method: str, path: str, user: str | None = None, expect: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, user, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text[:500])
        return response.json() if "json" in response.headers.get("Content-Type", "") else response

    def task(self, user: str, code: str, element_id: str) -> dict[str, Any]:
        items = self.ok("GET", "/api/v1/tasks", user)["items"]
        found = [t for t in items if t["dossier_code"] == code]
        assert [t["element_id"] for t in found] == [element_id], found
        return found[0]

    def complete(self, user: str, code: str, element_id: str, data: dict[str, Any]) -> None:
        task = self.task(user, code, element_id)
        self.ok("POST", f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})

    def status(self, code: str) -> int:
        return int(self.ok("GET", f"/api/v1/dossiers/{code}", "citizen")["status"]["code"])


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MOTCUA_DATABASE_URL": db_url,
        "MOTCUA_PUBLIC_URL": base,
        "MOTCUA_PAYMENT_SANDBOX": "on",
        "MOTCUA_VNPAY_TMN_CODE": "MOTCUA01",
        "MOTCUA_VNPAY_HASH_SECRET": secrets.token_hex(32),
        "MOTCUA_VNPAY_PAY_URL": f"{base}/sandbox/vnpay/paymentv2/vpcpay.html",
        "MOTCUA_VNPAY_API_URL": f"{base}/sandbox/vnpay/merchant_webapi/api/transaction",
        "MOTCUA_LINK_SECRET": secrets.token_hex(32),
        "MOTCUA_SCHEDULER": "off",
    }
    # The catalogue and the accounts, as `motcua seed` and `motcua users add` would write them (in-process:
    # a subprocess per command costs seconds; the server below is the real one).
    settings = Settings(database_url=db_url, scheduler=False)
    engine = build_engine(settings)
    engine.deploy(bundled_bpmn(settings.workflows_dir), deployed_by="seed")
    build_dossiers(engine, settings).seed_catalogue(settings.workflows_dir)
    accounts = Accounts(engine.store, engine.clock, hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    for name, (role, agency) in USERS.items():
        accounts.create_user(name, PASSWORD, roles={role}, full_name=name, agency_code=agency)
    engine.store.engine.dispose()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "motcua.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    live = Server(base)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError((tmp_path / "serve.log").read_text())
    for name in USERS:
        body = {"username": name, "password": PASSWORD}
        live.tokens[name] = live.ok("POST", "/api/v1/auth/token", json=body)["access_token"]
    yield live
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def _waiting_for_payment(live: Server, delivery: str) -> str:
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": delivery}
    code = str(live.ok("POST", "/api/v1/dossiers", "citizen", expect=201, json=body)["code"])
    live.complete("citizen", code, "information", {})
    live.complete("citizen", code, "submit_online", {"form_data": LLTP_FORM})
    live.complete("desk", code, "review", {"decision": "accept"})
    assert live.status(code) == 6
    return code


def _pay_at_the_bank(live: Server, code: str) -> dict[str, Any]:
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


def _decide(live: Server, code: str) -> None:
    live.complete(
        "specialist",
        code,
        "appraise",
        {"appraisal_opinion": "Không có án tích", "draft_result": "Phiếu lý lịch tư pháp số 1"},
    )
    live.complete("leader", code, "approve", {"approval": "approve", "approval_note": ""})
    assert live.status(code) == 9


def test_a_level_4_dossier_paid_at_the_sandbox_bank_and_collected_online(server: Server):
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


def test_a_level_4_dossier_paid_at_the_sandbox_bank_and_delivered_by_post(server: Server):
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
