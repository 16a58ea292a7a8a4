"""Compute what an instance exposes to queries (ready tasks, wake-ups, subscriptions) from its workflow.

Pure functions over a live SpiffWorkflow workflow; the store writes their result in the same transaction
as the instance state.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.defaults import EndEvent
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .store import Projection

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
RETRY_AT = "motcua_retry_at"
DUE_AT = "motcua_due_at"  # a timer's due time by the engine's clock (see runtime.align_timers)


def all_tasks(workflow: BpmnWorkflow) -> Iterator[Task]:
    """Yield every task of a workflow and of its subprocesses and call activities."""
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()


def project(workflow: BpmnWorkflow, business_key: str | None) -> Projection:
    """Return the projection of a workflow: status, ready human tasks, wake-ups, message subscriptions.

    One pass over the task dicts (not SpiffWorkflow's tree iterators): this runs after every unit of work.
    """
    ready: dict[str, dict[str, Any]] = {}
    timers: dict[str, dict[str, Any]] = {}
    position: list[dict[str, Any]] = []
    failed_for_good = False
    for task in all_tasks(workflow):
        if task.state == TaskState.READY and task.task_spec.manual:
            ready[str(task.id)] = ready_task_row(task)
            position.append(_place(task))
        elif task.state == TaskState.ERROR:
            retry_at = task.internal_data.get(RETRY_AT)
            if retry_at:
                due = datetime.fromisoformat(retry_at)
                timers[str(task.id)] = {"element_id": task.task_spec.name, "kind": "retry", "due_at": due}
            else:
                failed_for_good = True
    subscriptions = _scan_events(workflow, business_key, timers, position)
    if workflow.completed:
        position = [_place(task) for task in workflow.tasks.values() if _is_end(task)]
    status = _status(workflow, failed_for_good)
    return Projection(ready, timers, subscriptions, status, tuple(position))


def _scan_events(
    workflow: BpmnWorkflow,
    business_key: str | None,
    timers: dict[str, dict[str, Any]],
    position: list[dict[str, Any]],
) -> dict[tuple[str, str], dict[str, Any]]:
    """Add waiting timers to ``timers`` and waiting events to ``position``; return message subscriptions."""
    subscriptions: dict[tuple[str, str], dict[str, Any]] = {}
    for task in workflow.event_manager.tasks.values():
        if task.state != TaskState.WAITING:
            continue
        definition = task.task_spec.event_definition
        if isinstance(definition, TimerEventDefinition):
            due = timer_due_at(task)
            if due is not None:
                timers[str(task.id)] = {"element_id": task.task_spec.name, "kind": "timer", "due_at": due}
        elif isinstance(definition, MessageEventDefinition):
            subscriptions[(str(task.id), definition.name)] = {
                "element_id": task.task_spec.name,
                "correlation": expected_correlation(task, definition, business_key),
            }
        else:
            continue
        position.append(_place(task))
    return subscriptions


def _status(workflow: BpmnWorkflow, failed_for_good: bool) -> str:
    if workflow.completed:
        return "completed" if workflow.success else "cancelled"
    return "incident" if failed_for_good else "running"


def _is_end(task: Task) -> bool:
    return task.state == TaskState.COMPLETED and isinstance(task.task_spec, EndEvent)


def properties_of(task: Task) -> dict[str, str]:
    """Return the ``spiffworkflow:properties`` of a task's element."""
    return dict((getattr(task.task_spec, "extensions", None) or {}).get("properties", {}))


def _place(task: Task) -> dict[str, Any]:
    return {
        "element_id": task.task_spec.name,
        "task_id": str(task.id),
        "lane": task.task_spec.lane,
        "properties": properties_of(task),
    }


def ready_task_row(task: Task) -> dict[str, Any]:
    """Return the ready-task projection of a human task."""
    spec = task.task_spec
    properties = properties_of(task)
    form_ref = properties.get("formKey") or properties.get("form") or properties.get("formJsonSchemaFilename")
    return {
        "element_id": spec.name,
        "title": spec.bpmn_name or spec.name,
        "lane": spec.lane,
        "form_ref": form_ref,
        "created_at": datetime.fromtimestamp(task.last_state_change, UTC),
    }


def timer_due_at(task: Task) -> datetime | None:
    """Return when a waiting timer task is due, or None when its due time is not computed yet.

    The engine's own due time (``DUE_AT``) wins; else SpiffWorkflow's ``event_value``, where a naive
    date-time is Viet Nam time (as in timer expressions), not the machine's zone.  A cycle timer that
    has run all its rounds (``R3/...`` after the third) is due never again.
    """
    value = task._get_internal_data("event_value")
    cycle = isinstance(task.task_spec.event_definition, CycleTimerEventDefinition)
    if cycle and isinstance(value, dict) and value.get("cycles") == 0:
        return None
    aligned = task.internal_data.get(DUE_AT)
    if aligned is not None:
        return _aware(datetime.fromisoformat(aligned)).astimezone(UTC)
    if value is None:
        return None
    if cycle:
        value = value["next"]
    return _aware(datetime.fromisoformat(value)).astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ)


def expected_correlation(
    task: Task, definition: MessageEventDefinition, business_key: str | None
) -> dict[str, Any]:
    """Return the correlation values a waiting message event expects.

    Always the instance's business key (when it has one); then each correlation property of the message,
    taken from the correlations the workflow has established, else from a task variable of that name.
    """
    expected: dict[str, Any] = {}
    if business_key is not None:
        expected["business_key"] = business_key
    established: dict[str, Any] = {}
    for values in task.workflow.correlations.values():
        established.update(values)
    for prop in definition.correlation_properties:
        if prop.name in established:
            expected[prop.name] = established[prop.name]
        elif prop.name in task.data:
            expected[prop.name] = task.data[prop.name]
    return expected
