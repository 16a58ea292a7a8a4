"""Extension points for the layers above the engine: listeners, start preparation, cancellation."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from engine.errors import TaskStateError, ValidationError
from tests.engine.conftest import bpmn_file


def test_listeners_see_every_change_in_the_same_transaction(engine):
    seen = []
    engine.add_listener(lambda conn, change: seen.append((conn.in_transaction(), change)))
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "L-1"}, business_key="L-1", actor="citizen")
    engine.complete_task(view["tasks"][0]["id"], {"complete": True, "copies": 1}, actor="desk")
    assert [in_tx for in_tx, _ in seen] == [True, True]
    first, second = (change for _, change in seen)
    assert first.created and not second.created
    assert [p["element_id"] for p in first.projection.position] == ["reception"]
    assert first.projection.position[0]["lane"] == "mot_cua"
    assert first.projection.position[0]["properties"] == {"formKey": "tiep_nhan"}
    assert [p["element_id"] for p in second.projection.position] == ["wait_payment"]
    assert second.actor == "desk" and second.data["fee_total"]["total"] == 215000
    assert [a["action"] for a in second.audit] == ["task_completed"]


def test_prefetched_results_are_taken_once_before_the_writes_are_queued(engine, monkeypatch):
    """``Engine.save`` takes each prefetched result before it queues the unit's writes (in PostgreSQL's
    pipeline a result read after them waits for the server to write the state), and the listener then
    gets the same result without reading it again."""
    from engine.store import UnitOfWork

    events: list[str] = []

    class Listener:
        def prefetch(self, conn, business_key):
            def get():
                events.append("read")
                return conn.execute(text("SELECT :key"), {"key": business_key}).scalar_one()

            return {"key": get}

        def __call__(self, conn, change):
            if not change.created:  # a start prefetches nothing
                events.append(f"listener got {change.prefetched['key']()}")

    write_instance = UnitOfWork.write_instance

    def noted(self, *args, **kwargs):
        events.append("write")
        return write_instance(self, *args, **kwargs)

    monkeypatch.setattr(UnitOfWork, "write_instance", noted)
    engine.add_listener(Listener())
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "L-1"}, business_key="L-1", actor="citizen")
    events.clear()
    engine.complete_task(view["tasks"][0]["id"], {"complete": True, "copies": 1}, actor="desk")
    assert events == ["read", "write", "listener got L-1"]


def test_a_failing_listener_rolls_the_whole_unit_back(engine):
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "L-2"})

    def refuse(conn, change):
        raise ValidationError("refused by the dossier rules", {"decision": ["not allowed"]})

    engine.add_listener(refuse)
    with pytest.raises(ValidationError):
        engine.complete_task(view["tasks"][0]["id"], {"complete": True, "copies": 1})
    engine.listeners.clear()
    after = engine.show(view["id"])
    assert after["row_version"] == view["row_version"]
    assert [t["element_id"] for t in after["tasks"]] == ["reception"]
    assert [h["action"] for h in after["history"]] == ["started"]


def test_prepare_runs_inside_the_start_transaction(engine):
    engine.deploy([bpmn_file("lifecycle.bpmn")])

    def prepare(conn):
        conn.execute(text("CREATE TABLE IF NOT EXISTS hook_probe (n INTEGER)"))
        conn.execute(text("INSERT INTO hook_probe VALUES (1)"))
        return "PREPARED-1", {"dossier_code": "PREPARED-1"}

    view = engine.start("lifecycle_test", {}, prepare=prepare)
    assert view["business_key"] == "PREPARED-1" and view["data"]["dossier_code"] == "PREPARED-1"

    def prepare_then_fail(conn):
        conn.execute(text("INSERT INTO hook_probe VALUES (2)"))
        return "PREPARED-2", {"bad key": 1}

    with pytest.raises(ValidationError):
        engine.start("lifecycle_test", {}, prepare=prepare_then_fail)
    with engine.store.engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM hook_probe")).scalars().all() == [1]
        conn.execute(text("DROP TABLE hook_probe"))
        conn.commit()


def test_cancel_drops_tasks_and_waits(engine):
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    view = engine.start("lifecycle_test", {"dossier_code": "C-1"}, business_key="C-1")
    with pytest.raises(ValidationError):
        engine.cancel_instance(view["id"], "  ")
    view = engine.cancel_instance(view["id"], "công dân rút hồ sơ", actor="citizen")
    assert view["status"] == "cancelled" and view["tasks"] == [] and view["timers"] == []
    shown = engine.show(view["id"])
    assert shown["status"] == "cancelled" and shown["completed_at"] is not None
    assert shown["history"][-1]["details"] == {"reason": "công dân rút hồ sơ"}
    with pytest.raises(TaskStateError):
        engine.cancel_instance(view["id"], "again")
