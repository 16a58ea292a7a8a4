"""``GET /metrics``: who may scrape it, and that its numbers are the database's, measured on the engine clock.

Runs on the real app (``portal``: per-backend test database, one user per role), with the scrape token set
through ``Settings`` as ``MOTCUA_METRICS_TOKEN`` would set it.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, update

from api import create_app
from dossiers.tables import dossiers, webhook_deliveries, webhooks
from engine.errors import HandlerError
from engine.tables import job_runs, timers
from motcua.settings import Settings
from tests.api.conftest import USERS, Portal
from tests.dossiers.conftest import APPLICANT
from tests.engine.conftest import bpmn_file

TOKEN = "scrape-7f3a-token-2026"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JUDICIAL_RECORD = "2.000488"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def scraper(portal: Portal) -> FlaskClient:
    """The same services as ``portal``, in an app configured with a scrape token."""
    settings = Settings(database_url="sqlite://", metrics_token=TOKEN)
    app = create_app(
        settings, engine=portal.engine, dossiers=portal.dossiers, accounts=portal.accounts, TESTING=True
    )
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200, response.get_data(as_text=True)
    families = text_string_to_metric_families(response.get_data(as_text=True))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_the_scrape_token_and_admins_may_read_metrics_and_nobody_else(portal: Portal, scraper: FlaskClient):
    response = scraper.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data(as_text=True)
    assert "# HELP motcua_timers_due Wake-ups whose due time has passed" in body

    assert scraper.get("/metrics", headers=bearer(portal.login("admin"))).status_code == 200

    anonymous = scraper.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.mimetype == "application/problem+json"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in (TOKEN + "x", TOKEN[:-1], "", "nhầm-mã"):
        refused = scraper.get("/metrics", headers={"Authorization": f"Bearer {wrong}"})
        assert refused.status_code == 401, wrong
        assert refused.mimetype == "application/problem+json"
    assert scraper.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401

    for username, (roles, _) in USERS.items():
        if "admin" in roles:
            continue
        refused = scraper.get("/metrics", headers=bearer(portal.login(username)))
        assert refused.status_code == 403, username
        assert refused.mimetype == "application/problem+json"
        assert refused.get_json()["title"] and refused.get_json()["detail"]
    # An admin's API key is a machine credential for integrator endpoints, not a way in here.
    key, _ = portal.accounts.create_api_key("admin", name="tự động", scopes=["processes:start"])
    assert scraper.get("/metrics", headers={"X-API-Key": key}).status_code == 403


def test_without_a_configured_token_only_admins_may_read(portal: Portal):
    assert portal.client.get("/metrics", headers=bearer(TOKEN)).status_code == 401
    assert portal.call("GET", "/metrics", "admin").status_code == 200
    assert portal.call("GET", "/metrics", "analyst").status_code == 403


def test_metrics_stay_out_of_the_openapi_document(portal: Portal):
    document = portal.client.get("/api/v1/openapi.json").get_json()
    assert not any(path.endswith("/metrics") for path in document["paths"])


def test_due_unfired_timers_and_their_lag_are_measured_on_the_engine_clock(
    portal: Portal, scraper: FlaskClient, clock, calls
):
    engine = portal.engine
    engine.deploy([bpmn_file("boundary_timer.bpmn"), bpmn_file("service_retry.bpmn")])
    start = clock.now()
    first = engine.start("deadline_test", {})  # its deadline is due 3 days later
    clock.advance(hours=1)
    second = engine.start("deadline_test", {})
    samples = scrape(scraper)
    for kind, pending in (("timer", 2), ("retry", 0)):
        assert value(samples, "motcua_timers_pending", kind=kind) == pending
        assert value(samples, "motcua_timers_due", kind=kind) == 0
        assert value(samples, "motcua_timer_oldest_due_lag_seconds", kind=kind) == 0
        assert value(samples, "motcua_timers_leased", kind=kind) == 0

    clock.current = start + timedelta(days=3, hours=2, seconds=-100)
    calls.plan = [HandlerError("cổng dịch vụ công chưa trả lời", retryable=True)]
    engine.start("service_retry_test", {"dossier_code": "H-1"})  # retried 10 s later
    engine.start("deadline_test", {})  # not due for 3 more days
    clock.advance(seconds=100)
    samples = scrape(scraper)
    assert value(samples, "motcua_timers_pending", kind="timer") == 3
    assert value(samples, "motcua_timers_due", kind="timer") == 2
    assert value(samples, "motcua_timer_oldest_due_lag_seconds", kind="timer") == pytest.approx(7200)
    assert value(samples, "motcua_timers_pending", kind="retry") == 1
    assert value(samples, "motcua_timers_due", kind="retry") == 1
    assert value(samples, "motcua_timer_oldest_due_lag_seconds", kind="retry") == pytest.approx(90)

    # A worker holds the first deadline (as a claim does) for 30 s; then its lease runs out.
    with engine.store.unit_of_work() as uow:
        uow.conn.execute(
            update(timers)
            .where(timers.c.instance_id == first["id"])
            .values(claimed_by="worker-a", lease_until=clock.now() + timedelta(seconds=30))
        )
    assert value(scrape(scraper), "motcua_timers_leased", kind="timer") == 1
    clock.advance(seconds=31)
    samples = scrape(scraper)
    assert value(samples, "motcua_timers_leased", kind="timer") == 0
    assert value(samples, "motcua_timers_due", kind="timer") == 2
    assert value(samples, "motcua_timer_oldest_due_lag_seconds", kind="timer") == pytest.approx(7231)

    fired = engine.fire_due_timers()
    fired_timers = {r["instance_id"] for r in fired if r["kind"] == "timer" and r["outcome"] == "fired"}
    assert fired_timers == {first["id"], second["id"]}
    samples = scrape(scraper)
    assert value(samples, "motcua_timers_pending", kind="timer") == 1
    assert value(samples, "motcua_timers_pending", kind="retry") == 0
    for kind in ("timer", "retry"):
        assert value(samples, "motcua_timers_due", kind=kind) == 0
        assert value(samples, "motcua_timer_oldest_due_lag_seconds", kind=kind) == 0


def test_job_runs_rows_appear_per_worker_and_job(portal: Portal, scraper: FlaskClient, clock):
    finished = clock.now()
    rows = [
        {
            "worker": "host-1:4242",
            "job": "fire_timers",
            "runs": 120,
            "items": 37,
            "failures": 2,
            "last_started_at": finished - timedelta(milliseconds=250),
            "last_finished_at": finished,
            "last_duration_ms": 250.0,
            "last_items": 3,
            "last_lag_ms": 1500.0,
            "max_lag_ms": 4000.0,
            "last_error": None,
        },
        {"worker": "host-2:77", "job": "deliver_webhooks", "runs": 0, "items": 0, "failures": 0},
    ]
    rows[1] = {**dict.fromkeys(rows[0]), **rows[1]}  # executemany wants the same columns in every row
    with portal.engine.store.unit_of_work() as uow:
        uow.conn.execute(insert(job_runs), rows)
    samples = scrape(scraper)
    first = {"worker": "host-1:4242", "job": "fire_timers"}
    assert value(samples, "motcua_job_runs_total", **first) == 120
    assert value(samples, "motcua_job_items_total", **first) == 37
    assert value(samples, "motcua_job_failures_total", **first) == 2
    assert value(samples, "motcua_job_last_run_timestamp_seconds", **first) == pytest.approx(
        finished.timestamp()
    )
    assert value(samples, "motcua_job_last_duration_seconds", **first) == pytest.approx(0.25)
    assert value(samples, "motcua_job_last_lag_seconds", **first) == pytest.approx(1.5)
    assert value(samples, "motcua_job_max_lag_seconds", **first) == pytest.approx(4.0)
    second = {"worker": "host-2:77", "job": "deliver_webhooks"}
    assert value(samples, "motcua_job_runs_total", **second) == 0
    # A job that never finished a run reports no times rather than a misleading 0.
    gauges = ("motcua_job_last_run_timestamp_seconds", "motcua_job_last_lag_seconds")
    assert not any((name, tuple(sorted(second.items()))) in samples for name in gauges)


def test_instances_incidents_claims_dossiers_and_webhooks(portal: Portal, scraper: FlaskClient, clock, calls):
    engine = portal.engine
    engine.deploy([bpmn_file("boundary_timer.bpmn"), bpmn_file("service_retry.bpmn")])
    waiting = engine.start("deadline_test", {})
    engine.claim_task(waiting["tasks"][0]["id"], "specialist")
    calls.plan = [HandlerError("mã hồ sơ bị từ chối", retryable=False)]
    engine.start("service_retry_test", {"dossier_code": "H-2"})  # an incident at once
    engine.complete_task(engine.start("deadline_test", {})["tasks"][0]["id"], {})  # completed: not counted
    submitted = portal.call(
        "POST",
        "/api/v1/dossiers",
        "citizen",
        json={"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "post"},
    )
    assert submitted.status_code == 201, submitted.get_json()
    now = clock.now()
    _dossier_rows(portal, now)
    _webhook_rows(portal, now)

    samples = scrape(scraper)
    # The submitted dossier's instance is running too.
    assert value(samples, "motcua_instances", status="running") == 2
    assert value(samples, "motcua_instances", status="incident") == 1
    assert value(samples, "motcua_incidents_open") == 1
    assert value(samples, "motcua_task_claims") == 1
    assert value(samples, "motcua_dossiers_open") == 1 + 3
    assert value(samples, "motcua_dossiers_overdue") == 2
    assert value(samples, "motcua_webhook_deliveries_pending") == 2


def _dossier_rows(portal: Portal, now) -> None:
    """Dossiers in the states that count: open in time, overdue, overdue while paused, finished late."""
    base = {
        "procedure_code": JUDICIAL_RECORD,
        "level": 4,
        "agency_code": "000.00.14.H26",
        "owner": "citizen",
        "applicant": json.dumps(APPLICANT),
        "channel": 2,
        "submitted_at": now - timedelta(days=20),
        "updated_at": now,
        "finished_at": None,
    }
    rows = [
        {"code": "T-IN-TIME", "status": 4, "due_at": now + timedelta(days=2)},
        {"code": "T-LATE", "status": 4, "due_at": now - timedelta(hours=1)},
        {"code": "T-LATE-PAUSED", "status": 5, "due_at": now - timedelta(days=1)},
        {"code": "T-DONE-LATE", "status": 10, "due_at": now - timedelta(days=3), "finished_at": now},
        {"code": "T-PROCESSED", "status": 9, "due_at": now - timedelta(days=3), "finished_at": now},
        {"code": "T-REFUSED", "status": 3, "due_at": None, "finished_at": now},
    ]
    with portal.engine.store.unit_of_work() as uow:
        uow.conn.execute(insert(dossiers), [{**base, **row} for row in rows])


def _webhook_rows(portal: Portal, now) -> None:
    """Two deliveries still to send (one waiting for a retry), one delivered, one given up."""
    with portal.engine.store.unit_of_work() as uow:
        hook = uow.conn.execute(
            insert(webhooks).values(
                owner="integrator",
                url="https://example.invalid/hook",
                secret="s" * 32,
                events="*",
                active=True,
                created_at=now,
            )
        ).inserted_primary_key[0]
        base = {
            "webhook_id": hook,
            "event": "dossier.status_changed",
            "payload": "{}",
            "created_at": now,
            "last_status": None,
            "delivered_at": None,
            "gave_up_at": None,
        }
        rows = [
            {"due_at": now, "attempts": 0},
            {"due_at": now + timedelta(minutes=2), "attempts": 3, "last_status": 503},
            {"due_at": None, "attempts": 1, "last_status": 200, "delivered_at": now},
            {"due_at": None, "attempts": 8, "last_status": 500, "gave_up_at": now},
        ]
        uow.conn.execute(insert(webhook_deliveries), [{**base, **row} for row in rows])


def test_pending_payments_and_the_reconciliation_backlog(portal: Portal, scraper: FlaskClient, clock):
    from payments.tables import payments

    now = clock.now()
    _dossier_rows(portal, now)
    base = {
        "dossier_code": "T-IN-TIME",
        "provider": "vnpay",
        "amount": 200000,
        "currency": "VND",
        "lines": "[]",
    }
    rows = [
        {"txn_ref": "T1P01", "status": "pending", "expires_at": now + timedelta(minutes=10)},
        {"txn_ref": "T1P02", "status": "pending", "expires_at": now - timedelta(minutes=5)},
        {"txn_ref": "T1P03", "status": "paid", "expires_at": now - timedelta(minutes=5)},
        {"txn_ref": "T1P04", "status": "failed", "expires_at": now - timedelta(hours=1)},
    ]
    with portal.engine.store.unit_of_work() as uow:
        uow.conn.execute(insert(payments), [{**base, **row, "created_at": now} for row in rows])
    samples = scrape(scraper)
    assert value(samples, "motcua_payments_pending") == 2
    assert value(samples, "motcua_payments_pending_expired") == 1
