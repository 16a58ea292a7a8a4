"""The reconciliation job against a small VNPay ``querydr`` server on 127.0.0.1 that signs its answers.

An attempt whose IPN never came is looked up once it is past its expiry (plus a grace): paid at the bank is
settled exactly like a successful IPN, failed is failed, unfinished or unknown there is expired, and a bank
that cannot be reached or answers with a bad checksum changes nothing.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dossiers.status import Status
from motcua.bundle import bundled_bpmn
from motcua.scheduler import Scheduler
from motcua.settings import Settings
from payments import vnpay_protocol as wire
from tests.dossiers.conftest import WORKFLOWS
from tests.payments.conftest import SECRET, TMN, Till, ipn


class FakeBank:
    """VNPay's transaction API as far as ``querydr`` goes: checks the request's checksum, signs its answer."""

    def __init__(self) -> None:
        self.transactions: dict[str, tuple[str, Decimal]] = {}  # txn_ref -> (vnp_TransactionStatus, amount)
        self.requests: list[dict[str, Any]] = []
        self.tamper = False

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        expected = wire.query_checksum(request, wire.QUERY_REQUEST_FIELDS, SECRET)
        if request.get("vnp_SecureHash") != expected:
            return self._signed({"vnp_ResponseCode": "97", "vnp_Message": "Invalid checksum"})
        found = self.transactions.get(request["vnp_TxnRef"])
        if found is None:
            return self._signed({"vnp_ResponseCode": "91", "vnp_Message": "Transaction not found"})
        status, amount = found
        return self._signed(
            {
                "vnp_ResponseCode": "00",
                "vnp_Message": "QueryDR Success",
                "vnp_TxnRef": request["vnp_TxnRef"],
                "vnp_Amount": wire.vnp_amount(amount),
                "vnp_BankCode": "NCB",
                "vnp_PayDate": "20260302091500",
                "vnp_TransactionNo": "14422999",
                "vnp_TransactionType": "01",
                "vnp_TransactionStatus": status,
                "vnp_OrderInfo": request.get("vnp_OrderInfo", ""),
                "vnp_PromotionCode": "",
                "vnp_PromotionAmount": "",
            }
        )

    def _signed(self, fields: dict[str, Any]) -> dict[str, Any]:
        answer = {"vnp_ResponseId": uuid.uuid4().hex, "vnp_Command": "querydr", "vnp_TmnCode": TMN, **fields}
        answer["vnp_SecureHash"] = wire.query_checksum(answer, wire.QUERY_RESPONSE_FIELDS, SECRET)
        if self.tamper:
            answer["vnp_TransactionStatus"] = "00"
        return answer


@pytest.fixture
def bank() -> Iterator[tuple[FakeBank, str]]:
    fake = FakeBank()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            payload = json.dumps(fake.answer(json.loads(body))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_port}/merchant_webapi/api/transaction"
    server.shutdown()
    server.server_close()


@pytest.fixture
def banked(make_till: Callable[..., Till], bank: tuple[FakeBank, str]) -> tuple[Till, FakeBank]:
    fake, url = bank
    till = make_till(api_url=url)
    till.engine.deploy(bundled_bpmn(WORKFLOWS), deployed_by="seed")
    till.dossiers.seed_catalogue(WORKFLOWS)
    return till, fake


def _status(till: Till, txn_ref: str) -> dict[str, Any]:
    return next(p for p in till.snapshot(till_code(txn_ref, till))["payments"] if p["txn_ref"] == txn_ref)


def till_code(txn_ref: str, till: Till) -> str:
    with till.engine.store.unit_of_work(write=False) as uow:
        from payments import store

        row = store.payment_by_ref(uow.conn, txn_ref)
    assert row is not None
    return str(row["dossier_code"])


def test_nothing_is_asked_before_the_attempt_expired(banked):
    till, fake = banked
    till.start(till.waiting_dossier())
    till.clock.advance(minutes=16)  # expired, but within the grace an IPN may still come
    assert till.service.reconcile() == {}
    assert fake.requests == []


def test_a_payment_whose_ipn_never_came_is_settled_like_one(banked):
    till, fake = banked
    code = till.waiting_dossier("post")
    started = till.start(code)
    fake.transactions[started["txn_ref"]] = ("00", started["amount"])
    till.clock.advance(minutes=18)
    assert till.service.reconcile() == {"paid": 1}
    [request] = fake.requests
    assert request["vnp_Command"] == "querydr" and request["vnp_TmnCode"] == TMN
    assert request["vnp_TransactionDate"] == "20260302090000"  # the attempt's vnp_CreateDate, GMT+7
    assert request["vnp_CreateDate"] == "20260302091800" and len(request["vnp_RequestId"]) == 32
    payment = _status(till, started["txn_ref"])
    assert payment["status"] == "paid" and payment["settled_by"] == "reconcile"
    assert payment["process_advanced"] is True and payment["transaction_no"] == "14422999"
    snapshot = till.snapshot(code)
    assert snapshot["status"] == Status.PROCESSING and snapshot["receipts"] == 1
    # The late IPN then finds it settled.
    assert till.service.handle_ipn(ipn(started)) == ("02", "Order already confirmed")
    assert till.service.reconcile() == {}


def test_unfinished_unknown_and_failed_attempts(banked):
    till, fake = banked
    refs = []
    for status in ("01", None, "02"):
        code = till.waiting_dossier("online")
        started = till.start(code)
        refs.append(started["txn_ref"])
        if status is not None:
            fake.transactions[started["txn_ref"]] = (status, started["amount"])
    till.clock.advance(minutes=20)
    assert till.service.reconcile() == {"expired": 2, "failed": 1}
    unfinished, unknown, failed = (_status(till, ref) for ref in refs)
    assert unfinished["status"] == "expired" and unknown["status"] == "expired"
    assert failed["status"] == "failed" and failed["response_code"] == "TS02"
    for ref in refs:
        assert till.snapshot(till_code(ref, till))["status"] == Status.FINANCIAL_OBLIGATION
    # Another attempt may follow while the BPMN wait lasts.
    code = till_code(refs[0], till)
    assert till.start(code)["txn_ref"].endswith("P02")


def test_a_bad_checksum_or_no_bank_changes_nothing(banked, make_till):
    till, fake = banked
    code = till.waiting_dossier()
    started = till.start(code)
    fake.transactions[started["txn_ref"]] = ("02", started["amount"])
    fake.tamper = True  # the answer says 00 but its checksum was made over 02
    till.clock.advance(minutes=20)
    before = till.snapshot(code)
    assert till.service.reconcile() == {"unreachable": 1}
    assert till.snapshot(code) == before
    fake.tamper = False
    till.service.providers.get("vnpay").api_url = "http://127.0.0.1:9/closed"
    assert till.service.reconcile() == {"unreachable": 1}
    assert till.snapshot(code) == before


def test_a_different_amount_at_the_bank_is_not_settled_as_paid(banked):
    till, fake = banked
    code = till.waiting_dossier()
    started = till.start(code)
    fake.transactions[started["txn_ref"]] = ("00", started["amount"] - 1000)
    till.clock.advance(minutes=20)
    assert till.service.reconcile() == {"amount_differs": 1}
    payment = _status(till, started["txn_ref"])
    assert payment["status"] == "failed" and "kiểm tra" in payment["note"]
    assert till.snapshot(code)["status"] == Status.FINANCIAL_OBLIGATION


def test_the_scheduler_job_reconciles(banked, db_url):
    till, fake = banked
    code = till.waiting_dossier()
    started = till.start(code)
    fake.transactions[started["txn_ref"]] = ("00", started["amount"])
    till.clock.advance(minutes=20)
    settings = Settings(database_url=db_url, scheduler_tick=1.0)
    scheduler = Scheduler(
        till.engine, till.dossiers, settings, jobs=["reconcile_payments"], payments=till.service, worker="w1"
    )
    assert scheduler.jobs["reconcile_payments"].every == 60.0
    outcome = scheduler.run_job("reconcile_payments")
    assert outcome.items == 1 and outcome.detail == {"paid": 1}
    assert till.snapshot(code)["status"] == Status.PROCESSING
    assert scheduler.run_job("reconcile_payments").items == 0
    assert timedelta(minutes=15) == till.service.attempt
