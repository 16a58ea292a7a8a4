"""The stored state format: exact round trips, the fragment cache never serves stale JSON, upgrades."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine import state
from engine.bpmn import load_documents
from engine.runtime import EngineScriptEngine, SystemClock
from engine.state import STATE_FORMAT, StateCodec, StateFormatError
from tests.engine.conftest import bpmn_file, fresh_dump


def _script_engine() -> EngineScriptEngine:
    return EngineScriptEngine(
        lambda operator, params, context: {"total": sum(params["amounts"])}, SystemClock()
    )


def _attach(workflow: BpmnWorkflow) -> BpmnWorkflow:
    workflow.motcua_instance = SimpleNamespace(id="i-1", business_key="B-1")
    return workflow


def _snapshot(workflow: BpmnWorkflow) -> dict:
    return {
        str(task.id): (
            task.task_spec.name,
            task.state,
            task.data,
            task.internal_data,
            [str(c) for c in task._children],
        )
        for task in workflow.tasks.values()
    }


def _checked_dump(codec: StateCodec, workflow: BpmnWorkflow, spec, subs) -> BpmnWorkflow:
    cached = codec.dumps(workflow)
    assert cached == fresh_dump(codec, workflow), "the fragment cache served stale JSON"
    restored = codec.loads(cached, STATE_FORMAT, spec, subs, script_engine=workflow.script_engine)
    assert _snapshot(restored) == _snapshot(workflow)
    assert codec.dumps(restored) == cached
    return _attach(restored)


def test_round_trip_at_every_step_of_a_process():
    [process] = load_documents([bpmn_file("lifecycle.bpmn")])
    codec = StateCodec()
    spec, subs = codec.load_specs(codec.dump_specs(process.spec, process.subprocess_specs))
    workflow = _attach(BpmnWorkflow(spec, subs, script_engine=_script_engine()))
    for task in workflow.get_tasks(state=TaskState.READY):
        task.set_data(dossier_code="H53", note="Hồ sơ đủ")
    workflow.do_engine_steps()
    workflow = _checked_dump(codec, workflow, spec, subs)
    steps = 0
    while not workflow.completed and steps < 20:
        steps += 1
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if ready:
            ready[0].set_data(complete=True, copies=3, received=date(2026, 11, 30), fee=Decimal("1.10"))
            ready[0].run()
        else:  # waiting for the message or the timer: let them through
            for waiting in workflow.get_tasks(state=TaskState.WAITING):
                waiting.internal_data["event_fired"] = True
                if waiting.task_spec.name == "wait_payment":
                    waiting._set_state(TaskState.READY)
            workflow.refresh_timers()
        workflow.do_engine_steps()
        workflow = _checked_dump(codec, workflow, spec, subs)
    assert workflow.completed
    data = workflow.last_task.data
    assert data["fee"] == Decimal("1.10") and data["received"] == date(2026, 11, 30)


def test_stored_state_has_no_spec():
    [process] = load_documents([bpmn_file("lifecycle.bpmn")])
    codec = StateCodec()
    workflow = BpmnWorkflow(process.spec, process.subprocess_specs, script_engine=_script_engine())
    workflow.do_engine_steps()
    stored = json.loads(codec.dumps(workflow))
    assert set(stored) == {"spiff", "workflow"}
    assert "spec" not in stored["workflow"] and "subprocess_specs" not in stored["workflow"]


def test_newer_format_is_refused():
    with pytest.raises(StateFormatError):
        state.upgrade({}, STATE_FORMAT + 1)


def test_named_migrations_run_in_order(monkeypatch):
    calls = []

    def from_0_to_1(dct: dict) -> dict:
        calls.append("0->1")
        return {**dct, "migrated": True}

    monkeypatch.setitem(state.MIGRATIONS, 0, from_0_to_1)
    assert state.upgrade({"x": 1}, 0) == {"x": 1, "migrated": True}
    assert calls == ["0->1"]
    with pytest.raises(StateFormatError):
        state.upgrade({}, -1)
