"""``motcua show`` lists an instance's pending timers: element, kind, due time in Viet Nam and UTC, whether
it is due, and which worker holds it.  Run in-process through click, on SQLite and PostgreSQL, with the
engine on a test clock.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from engine.errors import HandlerError
from engine.tables import timers
from motcua import cli
from tests.engine.conftest import bpmn_file

VN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def engine(make_engine, clock, monkeypatch):
    clock.current = datetime(2026, 3, 2, 9, 0, tzinfo=VN)
    engine = make_engine()
    engine.deploy([bpmn_file("boundary_timer.bpmn"), bpmn_file("service_retry.bpmn")])
    monkeypatch.setattr(cli, "_engine", lambda: engine)
    return engine


def show(instance_id: str, *options: str) -> str:
    result = CliRunner().invoke(cli.main, ["show", instance_id, *options], catch_exceptions=False)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def timer_lines(output: str) -> list[str]:
    section = output.split("\ntimers:\n", 1)[1].split("\nhistory:\n", 1)[0]
    return section.splitlines()


def test_show_lists_a_waiting_timer_in_viet_nam_time_and_utc(engine):
    instance = engine.start("deadline_test", {}, business_key="HS-1")

    [line] = timer_lines(show(instance["id"]))
    assert line == (
        "  overdue  timer  due 2026-03-05 09:00:00 Asia/Ho_Chi_Minh = 2026-03-05 02:00:00 UTC  waiting"
    )
    [timer] = json.loads(show(instance["id"], "--json"))["timers"]
    assert timer["element_id"] == "overdue" and timer["kind"] == "timer"
    assert timer["due_at"] == "2026-03-05T02:00:00+00:00"
    assert (timer["due"], timer["leased"], timer["claimed_by"]) == (False, False, None)


def test_show_marks_a_due_timer_and_the_worker_that_holds_it(engine, clock):
    instance = engine.start("deadline_test", {})
    clock.advance(days=3, minutes=5)
    with engine.store.unit_of_work() as uow:
        uow.conn.execute(
            update(timers)
            .where(timers.c.instance_id == instance["id"])
            .values(claimed_by="worker-b", lease_until=clock.now() + timedelta(seconds=30))
        )

    [line] = timer_lines(show(instance["id"]))
    assert line.endswith("UTC  DUE, not fired  leased by worker-b until 09:05:30")
    [timer] = json.loads(show(instance["id"], "--json"))["timers"]
    assert (timer["due"], timer["leased"], timer["claimed_by"]) == (True, True, "worker-b")
    assert timer["lease_until"] == "2026-03-05T02:05:30+00:00"

    clock.advance(seconds=31)  # the lease ran out: any worker may take the timer again
    [line] = timer_lines(show(instance["id"]))
    assert line.endswith("UTC  DUE, not fired")
    assert json.loads(show(instance["id"], "--json"))["timers"][0]["leased"] is False


def test_show_lists_a_service_retry_and_says_when_nothing_is_pending(engine, calls):
    calls.plan = [HandlerError("cổng dịch vụ công không trả lời", retryable=True)]
    instance = engine.start("service_retry_test", {"dossier_code": "HS-2"})
    [line] = timer_lines(show(instance["id"]))
    assert line.startswith("  call_remote  retry  due 2026-03-02 09:00:10 Asia/Ho_Chi_Minh")

    done = engine.start("deadline_test", {})
    done = engine.complete_task(done["tasks"][0]["id"], {})
    assert timer_lines(show(done["id"])) == ["  none pending"]
    assert json.loads(show(done["id"], "--json"))["timers"] == []
