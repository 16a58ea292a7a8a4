"""Webhooks over HTTP: registration and its access rules, outbox events, signed deliveries to a real receiver.

The receiver is a real HTTP server on 127.0.0.1 in a thread; deliveries go out through ``urllib``.
"""

from __future__ import annotations

import hmac
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from api import webhooks as webhook_routes
from dossiers import webhooks
from dossiers.tables import webhook_deliveries
from engine.errors import ValidationError
from tests.api.conftest import PASSWORD, Portal
from tests.dossiers.conftest import APPLICANT, LLTP_FORM

JUDICIAL_RECORD = "2.000488"


@dataclass
class Receiver:
    """Records every POST; answers 500 to the next ``failures`` of them, 204 afterwards."""

    url: str = ""
    failures: int = 0
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests.append({"headers": headers, "body": body})
            if self.failures > 0:
                self.failures -= 1
                return 500
            return 204


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if received.delay:
                threading.Event().wait(received.delay)
            self.send_response(received.answer(dict(self.headers), body))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/motcua"
    yield received
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def hooks(portal: Portal) -> Portal:
    """The portal with the webhooks blueprint (registered here until the app factory does it)."""
    app = portal.client.application
    if "webhooks" not in app.blueprints:
        app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(webhook_routes.blp)
    return portal


def _register(portal: Portal, url: str, user: str = "integrator", events: Any = None) -> dict[str, Any]:
    body = {"url": url, "events": events or ["dossier.status_changed"]}
    response = portal.call("POST", "/api/v1/webhooks", user, json=body)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def _only_task(portal: Portal, user: str, element_id: str) -> dict[str, Any]:
    items = portal.call("GET", "/api/v1/tasks", user).get_json()["items"]
    assert [t["element_id"] for t in items] == [element_id], items
    return dict(items[0])


def _complete(
    portal: Portal, user: str, task: dict[str, Any], data: dict[str, Any], status: int = 200
) -> Any:
    response = portal.call("POST", f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _submitted(portal: Portal) -> str:
    """A judicial-record dossier submitted over HTTP and waiting for the desk's review."""
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "post"}
    created = portal.call("POST", "/api/v1/dossiers", "citizen", json=body)
    assert created.status_code == 201, created.get_json()
    _complete(portal, "citizen", _only_task(portal, "citizen", "information"), {})
    _complete(portal, "citizen", _only_task(portal, "citizen", "submit_online"), {"form_data": LLTP_FORM})
    return str(created.get_json()["code"])


def _deliveries(portal: Portal) -> int:
    with portal.engine.store.unit_of_work(write=False) as uow:
        return int(uow.conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one())


def _status_of(portal: Portal, code: str) -> int:
    return int(portal.call("GET", f"/api/v1/dossiers/{code}", "citizen").get_json()["status"]["code"])


def test_a_status_change_is_delivered_signed_to_the_receiver(hooks: Portal, receiver: Receiver):
    webhook = _register(hooks, receiver.url)
    assert webhook["secret"].startswith("whsec_") and webhook["events"] == ["dossier.status_changed"]
    code = _submitted(hooks)
    assert _status_of(hooks, code) == 1  # submitting moved nothing yet
    _complete(hooks, "desk", _only_task(hooks, "desk", "review"), {"decision": "accept"})
    assert _status_of(hooks, code) == 6

    results = webhooks.deliver_due(hooks.engine.store, hooks.clock)
    assert [(r["outcome"], r["status"], r["attempts"]) for r in results] == [("delivered", 204, 1)]
    (request,) = receiver.requests
    headers, body = request["headers"], request["body"]
    expected = webhooks.signature(webhook["secret"], headers["X-Motcua-Timestamp"], body)
    assert expected.startswith("sha256=") and len(expected) == 7 + 64
    assert hmac.compare_digest(headers["X-Motcua-Signature"], expected)
    assert headers["X-Motcua-Timestamp"] == str(int(hooks.clock.now().timestamp()))
    assert headers["X-Motcua-Event"] == "dossier.status_changed"
    assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert headers["X-Motcua-Delivery"] == str(event["id"]) == str(results[0]["id"])
    assert event["event"] == "dossier.status_changed"
    assert event["data"]["code"] == code and event["data"]["procedure_code"] == JUDICIAL_RECORD
    assert event["data"]["status"] == {"code": 6, "name": "Yêu cầu thực hiện nghĩa vụ tài chính"}
    assert event["data"]["previous_status"] == {"code": 1, "name": "Mới đăng ký"}
    assert datetime.fromisoformat(event["data"]["at"]) == hooks.clock.now()
    # A forged body does not verify.
    assert not hmac.compare_digest(
        headers["X-Motcua-Signature"],
        webhooks.signature(webhook["secret"], headers["X-Motcua-Timestamp"], body.replace(b"6", b"7")),
    )

    # Delivered once: nothing is due any more.
    assert webhooks.deliver_due(hooks.engine.store, hooks.clock) == []
    listed = hooks.call("GET", f"/api/v1/webhooks/{webhook['id']}/deliveries", "integrator").get_json()
    (delivery,) = listed["items"]
    assert (delivery["state"], delivery["last_status"], delivery["payload"]) == (
        "delivered",
        204,
        event["data"],
    )


def test_a_failing_receiver_is_retried_after_the_back_off(hooks: Portal, receiver: Receiver):
    code = _submitted(hooks)
    webhook = _register(hooks, receiver.url, events=["*"])  # registered now: only the acceptance is sent
    _complete(hooks, "desk", _only_task(hooks, "desk", "review"), {"decision": "accept"})
    store, clock = hooks.engine.store, hooks.clock
    receiver.failures = 2

    first = webhooks.deliver_due(store, clock)
    assert [(r["outcome"], r["status"], r["attempts"]) for r in first] == [("retry", 500, 1)]
    assert webhooks.deliver_due(store, clock) == []  # not due before the back-off has passed
    clock.advance(seconds=29)
    assert webhooks.deliver_due(store, clock) == []
    clock.advance(seconds=1)
    assert [r["outcome"] for r in webhooks.deliver_due(store, clock)] == ["retry"]  # 2nd attempt, 500
    clock.advance(seconds=59)  # the back-off doubled to 60 s
    assert webhooks.deliver_due(store, clock) == []
    clock.advance(seconds=1)
    third = webhooks.deliver_due(store, clock)
    assert [(r["outcome"], r["status"], r["attempts"]) for r in third] == [("delivered", 204, 3)]

    attempts = receiver.requests
    assert len(attempts) == 3
    assert len({a["headers"]["X-Motcua-Delivery"] for a in attempts}) == 1  # the same delivery each time
    assert json.loads(attempts[-1]["body"])["data"]["code"] == code
    listed = hooks.call(
        "GET", f"/api/v1/webhooks/{webhook['id']}/deliveries?limit=1", "integrator"
    ).get_json()
    (latest,) = listed["items"]
    assert (latest["state"], latest["attempts"], latest["last_status"], latest["due_at"]) == (
        "delivered",
        3,
        204,
        None,
    )


def test_an_unreachable_receiver_is_given_up_after_eight_attempts(hooks: Portal):
    with socket.socket() as probe:  # a port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/gone"
    webhook = _register(hooks, closed)
    _submitted(hooks)
    _complete(hooks, "desk", _only_task(hooks, "desk", "review"), {"decision": "accept"})
    pending = _deliveries(hooks)
    assert pending >= 1
    outcomes: dict[int, list[str]] = {}
    for _ in range(9):
        for result in webhooks.deliver_due(hooks.engine.store, hooks.clock):
            assert result["status"] is None and "Error" in result["error"]
            outcomes.setdefault(result["id"], []).append(result["outcome"])
        hooks.clock.advance(hours=1)
    assert list(outcomes.values()) == [["retry"] * 7 + ["gave_up"]] * pending
    listed = webhooks.deliveries_of(hooks.engine.store, webhook["id"], "integrator")  # tokens expired by now
    assert {(d["state"], d["attempts"], d["due_at"]) for d in listed} == {("gave_up", 8, None)}


def test_a_refused_step_enqueues_nothing(hooks: Portal, receiver: Receiver):
    _register(hooks, receiver.url)
    code = _submitted(hooks)
    before = _deliveries(hooks)
    review = _only_task(hooks, "desk", "review")
    # The dossier rules refuse a supplement request without its list: the whole step rolls back.
    refused = _complete(hooks, "desk", review, {"decision": "supplement"}, status=422)
    assert "supplement_items" in refused["errors"]
    assert _deliveries(hooks) == before

    # A rule that refuses the step after the status change was enqueued: the event goes with the step.
    seen: list[int] = []

    def refuse(conn: Any, change: Any) -> None:
        seen.append(int(conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one()))
        raise ValidationError("Refused after the dossier moved", {"decision": ["refused by a later rule"]})

    hooks.engine.add_listener(refuse)
    _complete(hooks, "desk", review, {"decision": "accept"}, status=422)
    assert seen == [before + 1]  # enqueued inside the step's transaction...
    assert _deliveries(hooks) == before  # ...and rolled back with it
    assert _status_of(hooks, code) != 6
    hooks.engine.listeners.remove(refuse)
    _complete(hooks, "desk", review, {"decision": "accept"})
    assert _deliveries(hooks) == before + 1


def test_only_integrators_manage_their_own_webhooks(hooks: Portal, receiver: Receiver):
    hooks.accounts.create_user(
        "integrator2", PASSWORD, roles={"integrator"}, full_name="Tích hợp 2", agency_code=None
    )
    body = {"url": receiver.url, "events": ["dossier.status_changed"]}
    assert hooks.call("POST", "/api/v1/webhooks", json=body).status_code == 401
    for user in ("citizen", "desk", "analyst"):
        refused = hooks.call("POST", "/api/v1/webhooks", user, json=body)
        assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    webhook = _register(hooks, receiver.url)
    path = f"/api/v1/webhooks/{webhook['id']}"

    # Another integrator sees nothing of it, and cannot delete it or read its deliveries.
    assert hooks.call("GET", "/api/v1/webhooks", "integrator2").get_json()["items"] == []
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/deliveries")):
        assert hooks.call(method, path + suffix, "integrator2").status_code == 404
    huge = f"/api/v1/webhooks/{2**80}/deliveries"  # beyond a BIGINT: not found, not a database error
    assert hooks.call("GET", huge, "admin").status_code == 404
    # The secret is shown once, at creation, and never again.
    for user in ("integrator", "admin"):
        listed = hooks.call("GET", "/api/v1/webhooks", user)
        assert [w["id"] for w in listed.get_json()["items"]] == [webhook["id"]]
        assert "secret" not in listed.get_json()["items"][0]
        assert webhook["secret"].encode() not in listed.data
        one = hooks.call("GET", path, user)
        assert one.status_code == 200 and webhook["secret"].encode() not in one.data
    assert hooks.call("GET", "/api/v1/webhooks", "citizen").status_code == 403

    # An API key needs the webhooks:manage scope.
    weak, _ = hooks.accounts.create_api_key("integrator", name="starts", scopes=["processes:start"])
    strong, _ = hooks.accounts.create_api_key("integrator", name="hooks", scopes=["webhooks:manage"])
    assert hooks.call("GET", "/api/v1/webhooks", headers={"X-API-Key": weak}).status_code == 403
    by_key = hooks.call("GET", "/api/v1/webhooks", headers={"X-API-Key": strong})
    assert [w["id"] for w in by_key.get_json()["items"]] == [webhook["id"]]

    assert hooks.call("DELETE", path, "integrator").status_code == 204
    assert hooks.call("GET", path, "integrator").status_code == 404
    assert hooks.call("DELETE", path, "integrator").status_code == 404


def test_webhooks_are_validated(hooks: Portal):
    for body, field_name in (
        ({"url": "ftp://example.vn/hook", "events": ["dossier.status_changed"]}, "url"),
        ({"url": "file:///etc/passwd", "events": ["*"]}, "url"),
        ({"url": "https://example.vn/hook", "events": ["dossier.deleted"]}, "events.0"),
        ({"url": "https://example.vn/hook", "events": []}, "events"),
        ({"url": "https://example.vn/hook"}, "events"),
    ):
        response = hooks.call("POST", "/api/v1/webhooks", "integrator", json=body)
        assert response.status_code == 422, body
        assert field_name in response.get_json()["errors"], response.get_json()
    spec = hooks.call("GET", "/api/v1/openapi.json").get_json()
    for path in ("/api/v1/webhooks", "/api/v1/webhooks/{webhook_id}/deliveries"):
        assert all(
            op["security"]
            for op in spec["paths"][path].values()
            if isinstance(op, dict) and "responses" in op
        )


def test_concurrent_workers_send_each_delivery_once(hooks: Portal, receiver: Receiver):
    _register(hooks, receiver.url)
    _register(hooks, receiver.url, events=["*"])
    for _ in range(3):
        code = _submitted(hooks)
        _complete(hooks, "desk", _only_task(hooks, "desk", "review"), {"decision": "accept"})
        assert _status_of(hooks, code) == 6
    pending = _deliveries(hooks)
    assert pending == 6  # three acceptances, two webhooks
    receiver.delay = 0.05

    start = threading.Barrier(6)

    def worker(_: int) -> list[dict[str, Any]]:
        start.wait()  # all claim at the same moment
        return webhooks.deliver_due(hooks.engine.store, hooks.clock)

    with ThreadPoolExecutor(max_workers=6) as pool:
        runs = list(pool.map(worker, range(6)))
    sent = [r["id"] for run in runs for r in run]
    assert sorted(sent) == sorted(set(sent)) and len(sent) == pending
    ids = [a["headers"]["X-Motcua-Delivery"] for a in receiver.requests]
    assert len(ids) == len(set(ids)) == pending


def test_a_deleted_webhook_receives_nothing_more(hooks: Portal, receiver: Receiver):
    webhook = _register(hooks, receiver.url)
    code = _submitted(hooks)
    _complete(hooks, "desk", _only_task(hooks, "desk", "review"), {"decision": "accept"})
    pending = _deliveries(hooks)
    assert pending >= 1

    assert hooks.call("DELETE", f"/api/v1/webhooks/{webhook['id']}", "integrator").status_code == 204
    assert webhooks.deliver_due(hooks.engine.store, hooks.clock) == []
    hooks.engine.send_message("payment.confirmed", {"dossier_code": code}, {"paid": 200000})
    assert _status_of(hooks, code) != 6  # the status changed again, but no event is enqueued for it
    assert _deliveries(hooks) == pending
    assert receiver.requests == []
    with hooks.engine.store.unit_of_work(write=False) as uow:
        rows = uow.conn.execute(select(webhook_deliveries)).all()
    assert {(r.due_at, r.last_error) for r in rows} == {(None, "webhook deleted")}
    assert all(r.gave_up_at is not None for r in rows)
