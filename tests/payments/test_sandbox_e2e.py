"""A level-4 fee paid end to end against the sandbox gateway (``sandbox_gateway/``, playing VNPay), with the
whole app on a real threaded HTTP server: our signed URL opens the bank's page, the bank's IPN reaches our IPN
endpoint over HTTP, the browser comes back to our return page, and the reconciliation job asks the bank's
``querydr`` API about an attempt nobody finished."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from accounts.service import Accounts
from api import create_app
from dossiers.catalogue import load_forms
from dossiers.service import DossierService
from dossiers.status import Status
from engine.facade import Engine
from motcua.bundle import bundled_bpmn
from motcua.settings import Settings
from motcua.wiring import build_payments
from payments.service import PaymentService
from sandbox_gateway.ipn import IpnSender
from sandbox_gateway.views import EXTENSION
from tests.dossiers.conftest import APPLICANT, LLTP_FORM, WORKFLOWS, vn

TMN = "MOTCUA01"
SECRET = "bí-mật-của-đơn-vị-" + "7e1d" * 12
PASSWORD = "mật-khẩu-thử-nghiệm-2026"
PAY_PATH = "/sandbox/vnpay/paymentv2/vpcpay.html"
CHOICE_PATH = "/sandbox/vnpay/paymentv2/choice"
QUERY_PATH = "/sandbox/vnpay/merchant_webapi/api/transaction"


@dataclass
class Live:
    app: Flask
    client: FlaskClient
    dossiers: DossierService
    payments: PaymentService
    clock: Any
    tokens: dict[str, str]

    def call(self, method: str, path: str, user: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def waiting_dossier(self) -> str:
        body = {
            "procedure_code": "2.000488",
            "applicant": APPLICANT,
            "delivery_method": "post",
            "form_data": LLTP_FORM,
        }
        code = str(self.call("POST", "/api/v1/dossiers", "citizen", json=body).get_json()["code"])
        [review] = [
            t
            for t in self.call("GET", "/api/v1/tasks", "desk").get_json()["items"]
            if t["dossier_code"] == code
        ]
        self.call(
            "POST", f"/api/v1/tasks/{review['id']}/complete", "desk", json={"data": {"decision": "accept"}}
        )
        return code

    def choose(self, payment_url: str, choice: str) -> Any:
        """Open the bank's page for our payment URL and make the customer's choice; return the redirect."""
        url = urlsplit(payment_url)
        page = self.client.get(f"{url.path}?{url.query}")
        assert page.status_code == 200, page.text[:300]
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
        return self.client.post(CHOICE_PATH, data={**fields, "choice": choice})


@pytest.fixture
def live(make_engine: Callable[..., Engine], clock: Any, db_url: str) -> Iterator[Live]:
    clock.current = vn(2026, 3, 2, 9, 0)
    engine = make_engine()
    engine.deploy(bundled_bpmn(WORKFLOWS), deployed_by="seed")
    dossiers = DossierService(engine, load_forms(WORKFLOWS / "forms"))
    dossiers.seed_catalogue(WORKFLOWS)
    accounts = Accounts(
        engine.store, clock, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    accounts.create_user("citizen", PASSWORD, roles={"applicant"}, full_name="Nguyễn Thị Hương")
    accounts.create_user(
        "desk", PASSWORD, roles={"reception"}, full_name="Cán bộ", agency_code="000.00.14.H26"
    )
    merchant = {"vnpay_tmn_code": TMN, "vnpay_hash_secret": SECRET, "scheduler": False}
    settings = Settings(database_url=db_url, payment_sandbox=True, **merchant)
    app = create_app(settings, engine=engine, dossiers=dossiers, accounts=accounts, TESTING=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    # Now that the address is known: the bank notifies it, and our URLs point at it.
    served = Settings(
        database_url=db_url,
        public_url=base,
        vnpay_pay_url=base + PAY_PATH,
        vnpay_api_url=base + QUERY_PATH,
        **merchant,
    )
    payments = build_payments(engine, dossiers, served)
    app.extensions["motcua.payments"] = payments
    app.extensions[EXTENSION].ipn_url = f"{base}/api/v1/payments/vnpay/ipn"
    app.extensions[EXTENSION].ipn = IpnSender(timeout=10.0, attempts=2, backoff=0.01)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = app.test_client()
    tokens = {
        user: client.post("/api/v1/auth/token", json={"username": user, "password": PASSWORD}).get_json()[
            "access_token"
        ]
        for user in ("citizen", "desk")
    }
    yield Live(app, client, dossiers, payments, clock, tokens)
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_paid_at_the_bank_advances_the_dossier_through_the_real_ipn(live: Live):
    code = live.waiting_dossier()
    started = live.call("POST", f"/api/v1/dossiers/{code}/payments", "citizen").get_json()
    assert started["amount"] == 230000
    back = live.choose(started["payment_url"], "paid")
    assert back.status_code == 302
    location = urlsplit(back.headers["Location"])
    assert location.path == "/api/v1/payments/vnpay/return"
    page = live.client.get(f"{location.path}?{location.query}").get_data(as_text=True)
    assert "Thanh toán thành công" in page and "230.000 đồng" in page and code in page
    assert "Đã thanh toán" in page  # the IPN, sent before the redirect, already recorded it
    dossier = live.call("GET", f"/api/v1/dossiers/{code}", "citizen").get_json()
    assert dossier["status"]["code"] == Status.PROCESSING
    seen = live.call("GET", f"/api/v1/dossiers/{code}/payments", "citizen").get_json()
    [attempt] = seen["attempts"]
    assert attempt["status"] == "paid" and attempt["settled_by"] == "ipn" and attempt["process_advanced"]
    assert seen["receipt"]["number"] == "BL-2026-0000001" and seen["receipt"]["amount"] == 230000


def test_a_cancelled_payment_then_an_abandoned_one_reconciled_with_the_bank(live: Live):
    code = live.waiting_dossier()
    first = live.call("POST", f"/api/v1/dossiers/{code}/payments", "citizen").get_json()
    back = live.choose(first["payment_url"], "cancelled")
    page = live.client.get(back.headers["Location"]).get_data(as_text=True)
    assert "Thanh toán không thành công" in page and "Khách hàng hủy giao dịch" in page
    assert live.call("GET", f"/api/v1/dossiers/{code}", "citizen").get_json()["status"]["code"] == 6
    second = live.call("POST", f"/api/v1/dossiers/{code}/payments", "citizen").get_json()
    assert second["txn_ref"].endswith("P02")
    url = urlsplit(second["payment_url"])
    assert live.client.get(f"{url.path}?{url.query}").status_code == 200  # opened, never finished
    live.clock.advance(minutes=20)
    assert live.payments.reconcile() == {"expired": 1}
    attempts = live.call("GET", f"/api/v1/dossiers/{code}/payments", "citizen").get_json()["attempts"]
    assert [(a["status"], a["response_code"]) for a in attempts] == [("failed", "24"), ("expired", None)]
    assert live.call("GET", f"/api/v1/dossiers/{code}", "citizen").get_json()["status"]["code"] == 6
