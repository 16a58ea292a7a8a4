"""Where an instance has been and where it stands, per BPMN process, for drawing it on its diagrams.

A process instance that runs call activities is several diagrams: the main process and each called process
(a fragment).  ``element_states`` groups the BPMN elements of a live workflow by the process that draws them:
elements of an embedded subprocess belong to the diagram of the process around it, elements of a called
process to that process's own diagram.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

# A call activity is STARTED while its called process runs; READY and WAITING are tasks and events waiting.
_ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED


def element_states(workflow: BpmnWorkflow) -> list[dict[str, Any]]:
    """Return, per process drawn, the ids of its completed, active and failed BPMN elements.

    Args:
        workflow: the live workflow of an instance.

    Returns:
        One entry per process key, the main process first, then the called processes in the order they
        were started: ``{"process_key", "called_from": {"process_key", "element_id"} | None, "completed",
        "active", "failed"}``, each list sorted.  An element both completed earlier and active now (a loop)
        is listed in both; a process called several times merges its runs.  Engine-internal tasks (start
        and end joins, boundary-event splits) have no BPMN id and are left out.
    """
    main = workflow.spec.name
    entries: dict[str, dict[str, Any]] = {main: _entry(main, None)}
    _add_tasks(entries[main], workflow.tasks.values())
    for parent_id, subprocess in workflow.subprocesses.items():
        parent = workflow.get_task_from_id(parent_id)
        key = _drawn_in(workflow, subprocess)
        if key not in entries:
            caller = {
                "process_key": _drawn_in(workflow, parent.workflow),
                "element_id": parent.task_spec.name,
            }
            entries[key] = _entry(key, caller)
        _add_tasks(entries[key], subprocess.tasks.values())
    return [
        {**entry, **{name: sorted(entry[name]) for name in ("completed", "active", "failed")}}
        for entry in entries.values()
    ]


def _entry(key: str, called_from: dict[str, str] | None) -> dict[str, Any]:
    return {
        "process_key": key,
        "called_from": called_from,
        "completed": set(),
        "active": set(),
        "failed": set(),
    }


def _drawn_in(top: BpmnWorkflow, workflow: Any) -> str:
    """The process whose diagram shows ``workflow``'s elements: its own when called, else its parent's."""
    while workflow is not top and workflow.parent_task_id is not None:
        parent = top.get_task_from_id(workflow.parent_task_id)
        if isinstance(parent.task_spec, CallActivity):
            return str(workflow.spec.name)
        workflow = parent.workflow
    return str(top.spec.name)


def _add_tasks(entry: dict[str, Any], tasks: Any) -> None:
    for task in tasks:
        element_id = _bpmn_id(task)
        if element_id is None:
            continue
        if task.state == TaskState.COMPLETED:
            entry["completed"].add(element_id)
        elif task.state & _ACTIVE:
            entry["active"].add(element_id)
        elif task.state == TaskState.ERROR:
            entry["failed"].add(element_id)


def _bpmn_id(task: Task) -> str | None:
    bpmn_id = getattr(task.task_spec, "bpmn_id", None)
    return str(bpmn_id) if bpmn_id else None
