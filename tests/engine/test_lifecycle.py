"""A dossier-like process run end to end through the engine facade, on SQLite and PostgreSQL.

The process has a user task, an exclusive gateway, a script, a service task, a message catch and a timer.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from SpiffWorkflow.bpmn.script_engine import python_environment

from engine.errors import NotFoundError, TaskStateError, ValidationError
from tests.engine.conftest import bpmn_file

DOSSIER = "000.00.01.H53-261130-0001"


def only_task(view: dict) -> dict:
    assert len(view["tasks"]) == 1, view["tasks"]
    return view["tasks"][0]


def actions(view: dict) -> list[str]:
    return [entry["action"] for entry in view["history"]]


def test_deploy_is_versioned_and_idempotent(engine):
    first = engine.deploy([bpmn_file("lifecycle.bpmn")], deployed_by="analyst")
    again = engine.deploy([bpmn_file("lifecycle.bpmn")], deployed_by="analyst")
    assert [(r["key"], r["version"], r["created"]) for r in first] == [("lifecycle_test", 1, True)]
    assert [(r["key"], r["version"], r["created"]) for r in again] == [("lifecycle_test", 1, False)]
    assert first[0]["sha256"] == again[0]["sha256"]
    changed = bpmn_file("lifecycle.bpmn")[1].replace("Phê duyệt".encode(), "Lãnh đạo phê duyệt".encode())
    result = engine.deploy([("lifecycle.bpmn", changed)], deployed_by="analyst")
    assert (result[0]["version"], result[0]["created"]) == (2, True)
    versions = engine.definitions("lifecycle_test")
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["deployed_by"] == "analyst"


def test_running_instances_stay_on_their_version(engine):
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    old = engine.start("lifecycle_test", {"dossier_code": "A"})
    changed = bpmn_file("lifecycle.bpmn")[1].replace("Tiếp nhận hồ sơ".encode(), "Tiếp nhận".encode())
    engine.deploy([("lifecycle.bpmn", changed)])
    new = engine.start("lifecycle_test", {"dossier_code": "B"})
    assert new["definition_id"] != old["definition_id"]
    assert only_task(new)["title"] == "Tiếp nhận"
    engine.instances.clear()  # force a reload from the database
    reloaded = engine.show(old["id"])
    assert reloaded["definition_id"] == old["definition_id"]
    assert only_task(reloaded)["title"] == "Tiếp nhận hồ sơ"


def test_full_lifecycle_with_restart(make_engine, clock):
    engine = make_engine()
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "H53-0001"}, business_key=DOSSIER, actor="citizen")
    assert view["status"] == "running"
    reception = only_task(view)
    assert (reception["element_id"], reception["title"], reception["lane"], reception["form_ref"]) == (
        "reception",
        "Tiếp nhận hồ sơ",
        "mot_cua",
        "tiep_nhan",
    )
    assert [t["id"] for t in engine.tasks(lane="mot_cua")] == [reception["id"]]

    view = engine.complete_task(reception["id"], {"complete": True, "copies": 2}, actor="desk.officer")
    assert view["tasks"] == []
    assert view["data"]["fee"] == Decimal("400000")
    assert view["data"]["fee_total"]["total"] == Decimal("415000")
    assert view["data"]["due_on"] == date(2026, 12, 10)
    [subscription] = view["subscriptions"]
    assert subscription["message_name"] == "payment.confirmed"
    assert subscription["correlation"] == {"business_key": DOSSIER, "dossier_code": "H53-0001"}

    # A restarted process knows nothing but the database.
    engine = make_engine()
    with pytest.raises(NotFoundError):
        engine.send_message("payment.confirmed", {"dossier_code": "other"}, {"paid": 1})
    view = engine.send_message(
        "payment.confirmed", {"dossier_code": "H53-0001"}, {"paid_amount": 415000}, actor="vnpay"
    )
    [timer] = view["timers"]
    assert timer["element_id"] == "cooling" and timer["kind"] == "timer"
    assert view["data"]["paid_amount"] == 415000
    assert engine.fire_due_timers() == []

    clock.advance(hours=2)
    engine = make_engine()
    fired = engine.fire_due_timers()
    assert [(f["element_id"], f["outcome"]) for f in fired] == [("cooling", "fired")]
    view = engine.show(view["id"])
    approve = only_task(view)
    assert (approve["element_id"], approve["lane"]) == ("approve", "lanh_dao")

    engine = make_engine()
    view = engine.show(engine.complete_task(approve["id"], {"approved": True}, actor="leader")["id"])
    assert view["status"] == "completed" and view["completed_at"] is not None
    assert view["tasks"] == [] and view["timers"] == [] and view["subscriptions"] == []
    assert actions(view) == [
        "started",
        "task_completed",
        "message_received",
        "timer_fired",
        "task_completed",
        "completed",
    ]
    assert [e["actor"] for e in view["history"][:3]] == ["citizen", "desk.officer", "vnpay"]
    data = make_engine().show(view["id"])["data"]
    assert isinstance(data["fee"], Decimal) and data["received_on"] == date(2026, 11, 30)


def test_gateway_default_flow_refuses(engine):
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "X"})
    view = engine.complete_task(only_task(view)["id"], {"complete": False, "copies": 0})
    assert view["status"] == "completed"
    assert "fee" not in view["data"]


def test_completing_twice_is_a_conflict_and_keeps_one_record(engine):
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "X"})
    task_id = only_task(view)["id"]
    engine.complete_task(task_id, {"complete": False, "copies": 0})
    with pytest.raises(TaskStateError):
        engine.complete_task(task_id, {"complete": True, "copies": 1})
    assert actions(engine.show(view["id"])).count("task_completed") == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([1, 2], "data"),
        ({"1abc": 1}, "data.1abc"),
        ({"_secret": 1}, "data._secret"),
        ({"x": object()}, "data"),
    ],
)
def test_bad_task_data_is_rejected_and_nothing_changes(engine, data, field):
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "X"})
    with pytest.raises(ValidationError) as caught:
        engine.complete_task(only_task(view)["id"], data)
    assert field in caught.value.errors
    after = engine.show(view["id"])
    assert after["row_version"] == view["row_version"]
    assert [t["id"] for t in after["tasks"]] == [t["id"] for t in view["tasks"]]


def test_unknown_things_are_not_found(engine):
    with pytest.raises(NotFoundError):
        engine.start("no_such_process")
    with pytest.raises(NotFoundError):
        engine.complete_task("00000000-0000-0000-0000-000000000000", {})
    with pytest.raises(NotFoundError):
        engine.show("00000000-0000-0000-0000-000000000000")


def test_default_script_engine_never_runs(make_engine, clock, monkeypatch):
    used = []

    def spy(self, *args, **kwargs):
        used.append(args)
        raise AssertionError("SpiffWorkflow's unrestricted environment ran")

    monkeypatch.setattr(python_environment.TaskDataEnvironment, "evaluate", spy)
    monkeypatch.setattr(python_environment.TaskDataEnvironment, "execute", spy)
    engine = make_engine()
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "Z"}, business_key="K")
    engine = make_engine()  # restored from the database from here on
    view = engine.complete_task(only_task(view)["id"], {"complete": True, "copies": 1})
    engine = make_engine()
    engine.send_message("payment.confirmed", {"business_key": "K"}, {})
    clock.advance(hours=2)
    make_engine().fire_due_timers()
    view = make_engine().show(view["id"])
    make_engine().complete_task(only_task(view)["id"], {})
    assert make_engine().show(view["id"])["status"] == "completed"
    assert used == []


def test_timer_due_time_is_queryable(engine, clock):
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "T"}, business_key="T")
    engine.complete_task(only_task(view)["id"], {"complete": True, "copies": 1})
    view = engine.send_message("payment.confirmed", {"business_key": "T"}, {})
    [timer] = view["timers"]
    assert timedelta(minutes=59) < timer["due_at"] - clock.now() < timedelta(minutes=61)
