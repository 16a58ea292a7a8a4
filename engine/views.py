"""Read models: the JSON-able view of one instance for ``show`` and the API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from .element_states import element_states
from .projection import all_tasks

if TYPE_CHECKING:
    from .runtime import Instance
    from .store import UnitOfWork

_SETTLED = TaskState.READY | TaskState.WAITING | TaskState.COMPLETED | TaskState.ERROR | TaskState.STARTED


def current_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Return the process data as it stands: the data of the most recently changed live or finished task.

    Tasks inside call activities and subprocesses count too: while a fragment runs, its data is the news.
    """
    latest = None
    for task in all_tasks(workflow):
        if task.state & _SETTLED and (latest is None or task.last_state_change >= latest.last_state_change):
            latest = task
    return dict(latest.data) if latest is not None else dict(workflow.data)


def workflow_view(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Return what ``instance_view`` reads from the workflow itself (no queries): the data and the elements
    done and active per process."""
    return {"data": current_data(workflow), "processes": element_states(workflow)}


def instance_view(head: Any, from_workflow: dict[str, Any], uow: UnitOfWork, now: datetime) -> dict[str, Any]:
    """Return the full view of an instance: identity, status, data, the elements done and active per
    process (``element_states``), tasks, waits, incidents, history.

    ``from_workflow`` is ``workflow_view`` of its workflow; the rest is read in ``uow``.  ``now`` (the engine
    clock) tells which timers are due and which a worker holds (``timer_view``).
    """
    instance_id = head.id
    return {
        "id": instance_id,
        "process_key": head.process_key,
        "definition_id": head.definition_id,
        "business_key": head.business_key,
        "status": head.status,
        "row_version": head.row_version,
        "created_at": head.created_at,
        "updated_at": head.updated_at,
        "completed_at": head.completed_at,
        **from_workflow,
        "tasks": [dict(row._mapping) for row in uow.ready_tasks(instance_id=instance_id)],
        "timers": sorted(
            (timer_view(row._mapping, now) for row in uow.timers_of(instance_id)),
            key=lambda timer: (timer["due_at"], timer["element_id"]),
        ),
        "subscriptions": [
            {
                "message_name": row.message_name,
                "element_id": row.element_id,
                "task_id": row.task_id,
                "correlation": json.loads(row.correlation),
            }
            for row in uow.subscriptions_of(instance_id)
        ],
        "incidents": [dict(row._mapping) for row in uow.open_incidents(instance_id)],
        "history": [
            {**dict(row._mapping), "details": json.loads(row.details) if row.details else None}
            for row in uow.audit_of(instance_id)
        ],
    }


def timer_view(row: Any, now: datetime) -> dict[str, Any]:
    """Return a pending wake-up with whether it is due and whether a worker holds it at ``now``.

    Args:
        row: the ``timers`` row (task_id, instance_id, element_id, kind, due_at, claimed_by, lease_until).
        now: the engine clock's time.

    Returns:
        The row's columns, plus ``due`` (its time has come but it has not fired yet) and ``leased`` (a
        worker's claim on it has not run out; ``claimed_by`` then names the worker).
    """
    timer = dict(row)
    lease_until = timer.get("lease_until")
    timer["due"] = timer["due_at"] <= now
    timer["leased"] = lease_until is not None and lease_until > now
    return timer


def summary(instance: Instance) -> dict[str, Any]:
    """Return the view of an instance right after a unit of work, from memory (no queries).

    Like ``instance_view`` without history and incidents; ``show`` gives those.
    """
    projection = instance.projection
    assert projection is not None, "summary() is for instances that were just saved"
    return {
        "id": instance.id,
        "process_key": instance.process_key,
        "definition_id": instance.definition_id,
        "business_key": instance.business_key,
        "status": projection.status,
        "row_version": instance.row_version,
        "data": current_data(instance.workflow),
        "tasks": [
            {"id": task_id, "instance_id": instance.id, **row}
            for task_id, row in projection.ready_tasks.items()
        ],
        "timers": [
            {"task_id": task_id, "instance_id": instance.id, **row}
            for task_id, row in projection.timers.items()
        ],
        "subscriptions": [
            {"task_id": task_id, "message_name": name, **row}
            for (task_id, name), row in projection.subscriptions.items()
        ],
    }
