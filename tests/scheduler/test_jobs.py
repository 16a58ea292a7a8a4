"""The scheduler's named jobs on real dossiers: payment waits expire, late dossiers are flagged and the
integrator hears about it over real HTTP, stale claims go back to the queue.

Jobs are run one at a time through ``Scheduler.run_job`` on the test clock (Monday 2 March 2026, 09:00).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dossiers.status import Status
from dossiers.webhooks import create_webhook
from motcua.scheduler import Scheduler
from motcua.settings import Settings
from tests.dossiers.conftest import LLTP_FORM, desk, vn  # noqa: F401 - the desk fixture

JUDICIAL_RECORD = "2.000488"  # level 4, 10 working days


@pytest.fixture
def scheduler(desk, db_url):  # noqa: F811 - the imported fixture
    return Scheduler(desk.service.engine, desk.service, Settings(database_url=db_url), worker="test-worker")


@pytest.fixture
def receiver():
    """A real HTTP server on 127.0.0.1 recording what it receives."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def _until_payment(desk, code):  # noqa: F811
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": LLTP_FORM}, actor="citizen-1")
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")


def test_an_unpaid_fee_expires_through_the_timer_job(desk, scheduler, clock):  # noqa: F811
    code = desk.submit(JUDICIAL_RECORD, delivery_method="online")["code"]
    _until_payment(desk, code)
    assert desk.status(code) == Status.FINANCIAL_OBLIGATION
    clock.advance(days=2)
    assert scheduler.run_job("fire_timers").items == 0
    clock.advance(days=2)
    outcome = scheduler.run_job("fire_timers")
    assert (outcome.items, outcome.detail["fired"]) == (1, 1)
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.STOPPED and dossier["finished_at"] is not None


def test_a_late_dossier_is_flagged_and_the_integrator_is_told(desk, scheduler, clock, receiver):  # noqa: F811
    url, received = receiver
    engine = desk.service.engine
    create_webhook(engine.store, owner="integrator", url=url, events=["dossier.overdue"], now=clock.now())
    code = desk.submit(JUDICIAL_RECORD, delivery_method="desk")["code"]
    _until_payment(desk, code)
    engine.send_message("payment.confirmed", {"dossier_code": code}, {})
    due = desk.service.dossier(code)["due_at"]
    assert due == vn(2026, 3, 16, 17, 0)

    clock.current = vn(2026, 3, 13, 17, 0)  # one working day left
    assert scheduler.run_job("dossier_deadlines").detail == {"due_soon": 1, "overdue": 0}
    assert desk.service.dossier(code)["apology_required"] is True
    assert scheduler.run_job("dossier_deadlines").items == 0  # marked once
    assert scheduler.run_job("deliver_webhooks").items == 0  # subscribed to overdue only

    clock.current = vn(2026, 3, 16, 17, 1)
    assert scheduler.run_job("dossier_deadlines").detail == {"due_soon": 0, "overdue": 1}
    outcome = scheduler.run_job("deliver_webhooks")
    assert outcome.detail == {"delivered": 1}
    [delivery] = received
    assert delivery["body"]["event"] == "dossier.overdue"
    assert delivery["body"]["data"]["code"] == code
    assert delivery["body"]["data"]["due_at"] == "2026-03-16T10:00:00+00:00"
    assert delivery["headers"]["X-Motcua-Signature"]
    assert scheduler.run_job("deliver_webhooks").items == 0


def test_a_forgotten_claim_is_released_by_its_job(desk, scheduler, clock):  # noqa: F811
    code = desk.submit(JUDICIAL_RECORD, delivery_method="desk")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": LLTP_FORM}, actor="citizen-1")
    task = desk.task(code, "review")
    desk.service.engine.claim_task(task["id"], "desk.officer")
    clock.advance(hours=9)
    assert scheduler.run_job("release_claims").detail == {"released": 1}
    assert desk.service.engine.claim_task(task["id"], "desk.officer2")["claimed_by"] == "desk.officer2"


def test_a_due_timer_another_worker_holds_does_not_make_the_job_spin(desk, db_url, clock, monkeypatch):  # noqa: F811
    """The timer job works for a whole tick, sleeping until the next due timer; a timer that is due but
    leased by another worker cannot be claimed, and the job must wait for the next tick, not ask again and
    again until this one ends."""
    from datetime import timedelta

    from sqlalchemy import text

    code = desk.submit(JUDICIAL_RECORD, delivery_method="online")["code"]
    _until_payment(desk, code)
    clock.advance(days=4)  # the payment's deadline is due
    engine = desk.service.engine
    with engine.store.unit_of_work() as uow:
        held = uow.conn.execute(
            text("UPDATE timers SET claimed_by = 'other-worker', lease_until = :until"),
            {"until": clock.now() + timedelta(hours=1)},
        )
        assert held.rowcount >= 1
    calls: list[int] = []
    original = engine.fire_due_timers

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "fire_due_timers", counted)
    scheduler = Scheduler(engine, desk.service, Settings(database_url=db_url, scheduler_tick=0.5), worker="w")
    outcome = scheduler.run_job("fire_timers")
    assert outcome.items == 0 and len(calls) == 1, len(calls)  # 1,010 calls when it looked again at once
    assert desk.status(code) == Status.FINANCIAL_OBLIGATION  # the other worker's to fire
