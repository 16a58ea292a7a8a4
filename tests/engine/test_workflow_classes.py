"""The engine's workflow and task classes (engine/workflow.py) behave as SpiffWorkflow's: the same log
records when SpiffWorkflow's logging is on, none of their cost when it is off, stored under SpiffWorkflow's
type names, and every task of the engine's workflows (call activities' and restored ones too) of the
engine's class."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from SpiffWorkflow.workflow import Workflow

from bench.engine_overhead import RawRunner, workloads
from engine import workflow as engine_workflow
from engine.bpmn import load_documents
from engine.runtime import EngineScriptEngine, SystemClock
from engine.state import STATE_FORMAT, StateCodec
from engine.workflow import MotcuaTask, MotcuaWorkflow
from tests.engine.conftest import bpmn_file, fresh_dump

SPIFF_LOGGERS = ("spiff.task", "spiff.workflow")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def spiff_log() -> Iterator[_Records]:
    """SpiffWorkflow's task and workflow loggers at INFO, their records collected."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in SPIFF_LOGGERS]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def _summary(record: logging.LogRecord) -> tuple[Any, ...]:
    """What a record says, without the ids and times that differ from run to run."""
    extras = record.__dict__
    return (
        record.name,
        record.levelno,
        record.getMessage(),
        extras.get("workflow_spec"),
        extras.get("task_spec"),
        extras.get("task_type"),
        extras.get("state"),
        extras.get("completed"),
        "parent_task_id" in extras,
        len(extras.get("tasks", ())),
        sorted(key for key in extras if key in {"elapsed", "last_state_change", "data", "internal_data"}),
    )


def _level4(workflow_class: type[BpmnWorkflow]) -> BpmnWorkflow:
    return RawRunner(workloads()["l4"], workflow_class).run(1)


def test_log_records_are_spiffworkflows_when_its_logging_is_on(spiff_log: _Records) -> None:
    _level4(BpmnWorkflow)
    spiff = [_summary(record) for record in spiff_log.records]
    spiff_log.records.clear()
    _level4(MotcuaWorkflow)
    ours = [_summary(record) for record in spiff_log.records]
    assert len(spiff) > 100
    assert any(summary[2] == "Workflow completed" for summary in spiff)
    assert ours == spiff


def test_no_log_record_is_built_when_spiffworkflows_logging_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SPIFF_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    monkeypatch.setattr(logging.getLogger("spiff"), "level", logging.WARNING)
    assert not logging.getLogger("spiff.task").isEnabledFor(logging.INFO)
    built: list[str] = []
    task_extras, workflow_extras = Task.collect_log_extras, Workflow.collect_log_extras

    def task_record(task: Task, *args: Any) -> Any:
        built.append(type(task).__name__)
        return task_extras(task, *args)

    def workflow_record(workflow: Workflow, *args: Any) -> Any:
        built.append(type(workflow).__name__)
        return workflow_extras(workflow, *args)

    monkeypatch.setattr(Task, "collect_log_extras", task_record)
    monkeypatch.setattr(Workflow, "collect_log_extras", workflow_record)
    _level4(BpmnWorkflow)
    # SpiffWorkflow's own classes build every record, and list every task for each workflow's records.
    assert built.count("Task") > 100
    assert {"BpmnWorkflow", "BpmnSubWorkflow"} <= set(built)
    built.clear()
    workflow = _level4(MotcuaWorkflow)
    assert workflow.completed
    # Only the start tasks made by SpiffWorkflow's constructor, before they become the engine's, log.
    assert "MotcuaTask" not in built
    assert set(built) <= {"Task"}
    assert len(built) <= 2 * len(workflow.subprocesses) + 2


def test_every_task_is_the_engines_and_is_stored_as_spiffworkflows() -> None:
    workflow = _level4(MotcuaWorkflow)
    everyone = [workflow, *workflow.subprocesses.values()]
    assert len(everyone) == 5  # the four call activities' workflows
    assert {type(task) for wf in everyone for task in wf.tasks.values()} == {MotcuaTask}
    codec = StateCodec()
    text = codec.dumps(workflow)
    stored = json.loads(text)["workflow"]
    typenames = {task["typename"] for task in stored["tasks"].values()}
    typenames |= {
        task["typename"] for sub in stored["subprocesses"].values() for task in sub["tasks"].values()
    }
    assert typenames == {"Task"}
    restored = codec.loads(
        text, STATE_FORMAT, workflow.spec, workflow.subprocess_specs, script_engine=workflow.script_engine
    )
    assert {
        type(task) for wf in (restored, *restored.subprocesses.values()) for task in wf.tasks.values()
    } == {MotcuaTask}
    assert codec.dumps(restored) == text


class _CheckedWorkflow(MotcuaWorkflow):
    """Checks, after every round of engine steps, that the index of tasks by state holds exactly the tasks in
    those states, in the workflow and in each call activity's workflow."""

    rounds = 0
    codec = StateCodec()

    def do_engine_steps(self, *args: Any, **kwargs: Any) -> None:
        super().do_engine_steps(*args, **kwargs)
        _check_index(self)
        restored = self.codec.loads(
            self.codec.dumps(self),
            STATE_FORMAT,
            self.spec,
            self.subprocess_specs,
            script_engine=self.script_engine,
        )
        _check_index(restored)  # a workflow restored from its stored state is indexed as it is built
        type(self).rounds += 1


def _check_index(workflow: BpmnWorkflow) -> None:
    for wf in (workflow, *workflow.subprocesses.values()):
        index = wf.__dict__[engine_workflow.INDEX]
        assert set(index) == {TaskState.READY, TaskState.WAITING}
        for state, members in index.items():
            assert members == {task for task in wf.tasks.values() if task.state == state}, (wf, state)


def test_the_index_of_tasks_by_state_follows_every_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_CheckedWorkflow, "rounds", 0)
    walks: list[int] = []
    walk = engine_workflow.walk

    def counted(*args: Any, **kwargs: Any) -> Any:
        walks.append(1)
        return walk(*args, **kwargs)

    monkeypatch.setattr(engine_workflow, "walk", counted)
    asked: list[int] = []
    get_tasks = engine_workflow._Walks.get_tasks

    def counted_get_tasks(self: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(1)
        return get_tasks(self, *args, **kwargs)

    monkeypatch.setattr(engine_workflow._Walks, "get_tasks", counted_get_tasks)
    workflow = _level4(_CheckedWorkflow)
    assert _CheckedWorkflow.rounds == 8 and workflow.completed
    # Most questions are answered from the index: a walk only when two or more tasks are in the state.
    assert len(walks) < len(asked) / 2


def test_the_index_forgets_tasks_removed_by_a_reset() -> None:
    [process] = load_documents([bpmn_file("lifecycle.bpmn")])
    script_engine = EngineScriptEngine(
        lambda operator, params, context: {"total": sum(params["amounts"])}, SystemClock()
    )
    workflow = MotcuaWorkflow(process.spec, process.subprocess_specs, script_engine=script_engine)
    workflow.motcua_instance = SimpleNamespace(id="i-1", business_key="B-1", conn=None)
    workflow.do_engine_steps()
    [reception] = workflow.get_tasks(state=TaskState.READY, manual=True)
    reception.set_data(complete=True, copies=1)
    reception.run()
    workflow.do_engine_steps()
    _check_index(workflow)
    waiting = [task for task in workflow.tasks.values() if task.state in (TaskState.READY, TaskState.WAITING)]
    assert waiting  # the tasks the reset is about to remove
    workflow.reset_from_task_id(reception.id)
    assert not any(task.id in workflow.tasks for task in waiting)
    _check_index(workflow)
    assert workflow.get_tasks(state=TaskState.READY) == [workflow.tasks[reception.id]]


def test_a_finished_call_activitys_json_is_reused_until_one_of_its_tasks_changes() -> None:
    workflow = _level4(MotcuaWorkflow)
    codec = StateCodec()
    text = codec.dumps(workflow)
    cache = workflow.__dict__["_motcua_fragments"]
    assert {slot for slot in cache if isinstance(slot, tuple)} == {
        ("subprocess", task_id) for task_id in workflow.subprocesses
    }
    assert codec.dumps(workflow) == text == fresh_dump(codec, workflow)
    sub = next(iter(workflow.subprocesses.values()))
    task = next(t for t in sub.tasks.values() if t.state == TaskState.COMPLETED)
    task._set_state(TaskState.CANCELLED)  # any change of a task's state in it
    changed = codec.dumps(workflow)
    assert changed != text and changed == fresh_dump(codec, workflow)
