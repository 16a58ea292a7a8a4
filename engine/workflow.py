"""The engine's workflow class: SpiffWorkflow's ``BpmnWorkflow``, finding its ready and waiting tasks faster.

Running engine steps, SpiffWorkflow looks for READY tasks by walking the whole task tree (and the trees of
the running call activities) with ``BpmnTaskIterator`` after every round of steps, and for WAITING tasks after
every completed task.  The iterator is general (any filter, depth limits, breadth-first order), and pays for
it on every node: a list pop from the front, a new list for the children and another for the rest, depth
book-keeping that walks up the parents, a filter object.  In a task completion that walking is about a fifth
of SpiffWorkflow's time.

``walk`` visits the same tasks in the same order, pruning the same branches, with a plain stack: the
iterator's own rules, for the one filter these loops use (a state, matched with ``has_state``).  It is lazy
like the iterator, so a caller that changes the tree while iterating sees what it would have seen.  Its depth
limit (1,000 levels) cannot be reached by a workflow of fewer than 1,000 tasks in all; a larger one is left
to SpiffWorkflow's iterator.  ``tests/engine/conftest.py`` checks ``walk`` against ``BpmnTaskIterator`` on
every call made by the engine's tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskIterator, TaskState

_READY = TaskState.READY
_WAITING = TaskState.WAITING
_FINISHED = TaskState.FINISHED_MASK
# TaskIterator prunes the children of tasks below this state when looking for READY or WAITING tasks
# (predicted tasks cannot have definite children).
_DEFINITE_FLOOR = TaskState.FUTURE
# BpmnTaskIterator / TaskIterator stop descending at this depth.
_MAX_DEPTH = 1000


def walk(root: Task, state: int, *, into_subprocesses: bool) -> Iterator[Task]:
    """Yield the tasks under ``root`` (itself included) in ``state``, as ``BpmnTaskIterator(root,
    state=state)`` does (``into_subprocesses``) or ``TaskIterator(root, state=state)`` (not), for a state of
    the definite mask (``FUTURE``, ``WAITING``, ``READY``, ``STARTED``).

    Each task's children are taken when the task is reached, before it is yielded, as the iterators do.
    """
    subprocesses: dict[Any, Any] = root.workflow.top_workflow.subprocesses if into_subprocesses else {}
    stack = [root]
    pop, extend, push = stack.pop, stack.extend, stack.append
    while stack:
        task = pop()
        current = task._state
        subprocess = subprocesses.get(task.id) if into_subprocesses else None
        if subprocess is None:
            if task._children and current >= _DEFINITE_FLOOR:
                found = task.workflow.tasks.get
                extend([found(child) for child in reversed(task._children)])
        else:
            found = task.workflow.tasks.get
            extend([found(child) for child in reversed(task._children)])
            # BpmnTaskIterator skips a call activity's tree only if the task is "at least FINISHED_MASK"
            # (no single state is) and the filter looks for finished states: never, for these filters.
            if not (current >= _FINISHED and state <= _FINISHED):
                push(subprocess.task_tree)
        if current & state and task.last_state_change >= 0:
            yield task


def _small(workflow: BpmnWorkflow) -> bool:
    """Whether the workflow and its call activities hold fewer tasks than the iterators' depth limit."""
    total = len(workflow.tasks)
    for subprocess in workflow.subprocesses.values():
        total += len(subprocess.tasks)
    return total < _MAX_DEPTH


def ready_tasks(workflow: Any) -> list[Task]:
    """``workflow.get_tasks(state=TaskState.READY)``, for the top workflow or one of its call activities."""
    if not _small(workflow.top_workflow):
        return list(workflow.get_tasks(state=_READY))
    return list(walk(workflow.task_tree, _READY, into_subprocesses=True))


def _update_waiting(workflow: Any) -> None:
    """SpiffWorkflow's ``Workflow.update_waiting_tasks``, walking with ``walk``: update every WAITING task
    of this (sub)process's own tree."""
    tasks = (
        walk(workflow.task_tree, _WAITING, into_subprocesses=False)
        if _small(workflow.top_workflow)
        else TaskIterator(workflow.task_tree, state=_WAITING)
    )
    for task in tasks:
        task.task_spec._update(task)


class MotcuaSubWorkflow(BpmnSubWorkflow):
    """A call activity's ``BpmnSubWorkflow`` that finds its waiting tasks with ``walk`` (stored and restored
    as a ``BpmnSubWorkflow``)."""

    def update_waiting_tasks(self) -> None:
        _update_waiting(self)


class MotcuaWorkflow(BpmnWorkflow):
    """A ``BpmnWorkflow`` whose engine steps find their tasks with ``walk``; otherwise the same class (its
    state is stored and restored as a ``BpmnWorkflow``'s)."""

    def create_subprocess(self, my_task: Task, spec_name: str) -> MotcuaSubWorkflow:
        # SpiffWorkflow's, with the engine's class for the call activity's workflow.
        subprocess = MotcuaSubWorkflow(
            self.subprocess_specs[spec_name], parent_task_id=my_task.id, top_workflow=self
        )
        self.subprocesses[my_task.id] = subprocess
        return subprocess

    def _do_engine_steps(
        self,
        will_complete_task: Callable[[Task], None] | None = None,
        did_complete_task: Callable[[Task], None] | None = None,
    ) -> bool:
        # SpiffWorkflow's BpmnWorkflow._do_engine_steps, with ``ready_tasks`` for ``get_tasks(state=READY)``.
        def update_workflow(wf: Any) -> int:
            count = 0
            for task in ready_tasks(wf):
                if not task.task_spec.manual:
                    if will_complete_task is not None:
                        will_complete_task(task)
                    task.run()
                    count += 1
                    if did_complete_task is not None:
                        did_complete_task(task)
            return count

        active_subprocesses = self.get_active_subprocesses()
        for subprocess in sorted(active_subprocesses, key=lambda v: v.depth, reverse=True):
            count = None
            while count is None or count > 0:
                count = update_workflow(subprocess)
            if subprocess.parent_task_id is not None:
                task = self.get_task_from_id(subprocess.parent_task_id)
                task.task_spec._update(task)

        count = update_workflow(self)
        return count > 0 or len(self.get_active_subprocesses()) > len(active_subprocesses)

    def update_waiting_tasks(self) -> None:
        _update_waiting(self)
