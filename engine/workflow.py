"""The engine's workflow classes: SpiffWorkflow's, finding tasks by state faster.

Running engine steps, SpiffWorkflow looks for READY tasks (``get_tasks(state=READY)``) by walking the whole
task tree, and the trees of the running call activities, with ``BpmnTaskIterator`` after every round of
steps, and for WAITING tasks (``update_waiting_tasks``) after every completed task.  The iterator is general
(any filter, depth limits, breadth-first order), and pays for it on every node: a list pop from the front, a
new list for the children and another for the rest, depth book-keeping that walks up the parents, a filter
object.  In a task completion that walking was about a fifth of SpiffWorkflow's time.

``walk`` visits the same tasks in the same order, pruning the same branches, with a plain stack: the
iterators' own rules, for a filter on a state of the definite mask alone (``FUTURE``, ``WAITING``,
``READY``, ``STARTED``).  It is lazy like the iterators, so a caller that changes the tree while iterating
sees what it would have seen.  Their depth limit (1,000 levels) cannot be reached by a workflow of fewer than
1,000 tasks in all; a larger one, and every other query, is left to SpiffWorkflow.  ``tests/conftest.py``
checks ``walk`` against SpiffWorkflow's iterators, step by step, on every call made by the test suite.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskIterator, TaskState

_WAITING = TaskState.WAITING
_DEFINITE = TaskState.DEFINITE_MASK
_PREDICTED = TaskState.PREDICTED_MASK
_FINISHED = TaskState.FINISHED_MASK
# TaskIterator prunes the children of tasks below this state when looking for tasks in definite states
# (predicted tasks cannot have definite children).
_DEFINITE_FLOOR = TaskState.FUTURE
# BpmnTaskIterator / TaskIterator stop descending at this depth.
_MAX_DEPTH = 1000
_READY = TaskState.READY
_MAYBE = TaskState.MAYBE
# SpiffWorkflow's task and workflow loggers: their records are built only when they would be kept.
_task_log = logging.getLogger("spiff.task")
_workflow_log = logging.getLogger("spiff.workflow")
_INFO, _DEBUG = logging.INFO, logging.DEBUG


class MotcuaTask(Task):
    """SpiffWorkflow's ``Task``, logging its state changes only when the log would keep them.

    ``Task._set_state`` formats its message and gathers the record's extras (the state's name through
    ``TaskState.get_name``, which builds two dicts per call) for every state change, before asking the
    logger, whose level discards them unless someone turned SpiffWorkflow's logging on: a tenth of the
    engine's time in a unit of work.  Here the logger is asked first; the records, when kept, are the same.
    The children the task adds are of this class too; stored and restored as SpiffWorkflow's ``Task``.
    """

    _state: int
    last_state_change: float

    def __init__(
        self,
        workflow: Any,
        task_spec: TaskSpec | None,
        parent: Task | None = None,
        state: int = _MAYBE,
        id: Any = None,
    ) -> None:
        super().__init__(workflow, task_spec, parent, state=state, id=id)
        found = workflow.__dict__
        index: dict[int, set[Task]] | None = found.get(INDEX)
        if index is not None:
            found[CHANGES] += 1
            if state in index:
                index[state].add(self)

    def _set_state(self, value: int) -> None:
        if value != self._state:
            found = self.workflow.__dict__
            index: dict[int, set[Task]] | None = found.get(INDEX)
            if index is not None:
                found[CHANGES] += 1
                if self._state in index:
                    index[self._state].discard(self)
                if value in index:
                    index[value].add(self)
            now = time.time()
            elapsed = now - self.last_state_change
            self.last_state_change = now
            self._state = value
            if _task_log.isEnabledFor(_INFO):
                _task_log.info(
                    f"State changed to {TaskState.get_name(value)}",
                    extra=self.collect_log_extras({"elapsed": elapsed}),
                )
        elif _task_log.isEnabledFor(_DEBUG):
            _task_log.debug(f"State set to {TaskState.get_name(value)}", extra=self.collect_log_extras())

    def _add_child(self, task_spec: TaskSpec, state: int = _MAYBE) -> Task:
        # SpiffWorkflow's, creating a task of this class.
        if self._state & _PREDICTED and not state & _PREDICTED:
            raise WorkflowException(
                "Attempt to add non-predicted child to predicted task", task_spec=self.task_spec
            )
        task = MotcuaTask(self.workflow, task_spec, self, state=state)
        task.thread_id = self.thread_id
        if state == _READY:
            task._ready()
        return task


# A (sub)workflow's tasks in the states its walks look for most, by state (``_Walks``): kept by
# ``MotcuaTask`` as tasks are made, change state and are removed.
INDEX = "_motcua_by_state"
# How many times a (sub)workflow's tasks were made, changed state or were removed (``StateCodec`` reuses the
# JSON of a finished call activity's workflow while this count stays the same).
CHANGES = "_motcua_changes"
INDEXED = (_READY, _WAITING)


def _adopt(workflow: Any) -> None:
    """Give the tasks SpiffWorkflow's constructor made (the start task and its predicted branch) the
    engine's task class, so that the tasks they add are of it too, and index them by state.  The
    constructor's own few state changes (the start task's) were logged SpiffWorkflow's way: once per
    (sub)workflow, not per unit of work."""
    index = workflow.__dict__[INDEX]
    for task in workflow.tasks.values():
        if type(task) is Task:
            task.__class__ = MotcuaTask
        if task._state in index:
            index[task._state].add(task)


def _new_index() -> dict[int, set[Task]]:
    return {state: set() for state in INDEXED}


def walk(root: Task, state: int, *, into_subprocesses: bool) -> Iterator[Task]:
    """Yield the tasks under ``root`` (itself included) in ``state``, as ``BpmnTaskIterator(root,
    state=state)`` does (``into_subprocesses``) or ``TaskIterator(root, state=state)`` (not), for a state
    mask with definite states (``FUTURE``, ``WAITING``, ``READY``, ``STARTED``) and no predicted ones.

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
            # (no single state is) and the filter looks for finished states: never.
            if not (current >= _FINISHED and state <= _FINISHED):
                push(subprocess.task_tree)
        if current & state and task.last_state_change >= 0:
            yield task


def _within(subprocess: Any, ancestor: Any) -> bool:
    """Whether a call activity's workflow runs (at any depth) under ``ancestor``'s tree."""
    current = subprocess
    while True:
        parent = current.top_workflow.get_task_from_id(current.parent_task_id)
        if parent is None:
            return False
        current = parent.workflow
        if current is ancestor:
            return True
        if current is current.top_workflow:
            return False


def _small(workflow: BpmnWorkflow) -> bool:
    """Whether the workflow and its call activities hold fewer tasks than the iterators' depth limit."""
    total = len(workflow.tasks)
    for subprocess in workflow.subprocesses.values():
        total += len(subprocess.tasks)
    return total < _MAX_DEPTH


class _Walks:
    """``get_tasks(state=...)`` and ``update_waiting_tasks`` with ``walk``, for a (sub)workflow class."""

    task_tree: Task
    top_workflow: Any
    tasks: dict[Any, Task]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__[INDEX] = _new_index()
        self.__dict__[CHANGES] = 0
        super().__init__(*args, **kwargs)
        _adopt(self)

    def get_tasks(self, first_task: Task | None = None, **kwargs: Any) -> list[Task]:
        state = kwargs.get("state")
        if (
            first_task is None
            and len(kwargs) == 1
            and isinstance(state, int)
            and state & _DEFINITE
            and not state & _PREDICTED
            and _small(self.top_workflow)
        ):
            if state in INDEXED:
                found = self._indexed(state)
                if found is not None:
                    return found
            return list(walk(self.task_tree, state, into_subprocesses=True))
        return super().get_tasks(first_task, **kwargs)  # type: ignore[misc]

    def _indexed(self, state: int) -> list[Task] | None:
        """The tasks in ``state`` under this (sub)workflow, its call activities' included, from the index
        when there is at most one (order then does not matter); None when the walk must say (more than one,
        or a workflow of another class is involved)."""
        index = self.__dict__.get(INDEX)
        if index is None:
            return None
        found = list(index[state])
        if len(found) > 1:
            return None
        top = self.top_workflow
        for subprocess in top.subprocesses.values():
            if subprocess is self:
                continue
            theirs = subprocess.__dict__.get(INDEX)
            if theirs is None:
                return None
            members = theirs[state]
            if members and (self is top or _within(subprocess, self)):
                found.extend(members)
            if len(found) > 1:
                return None
        return found

    def _remove_task(self, task_id: Any) -> None:
        task = self.tasks.get(task_id)
        super()._remove_task(task_id)  # type: ignore[misc]
        index = self.__dict__.get(INDEX)
        if task is not None and index is not None:
            self.__dict__[CHANGES] += 1
            for members in index.values():
                members.discard(task)

    def collect_log_extras(self, dct: dict[str, Any] | None = None) -> dict[str, Any]:
        """SpiffWorkflow's extras for the workflow's log records, gathered only when they would be kept.

        Every caller logs at INFO ("Initialized workflow", "Workflow completed", "Workflow cancelled"), and
        SpiffWorkflow's version lists every task of the workflow whenever its logger has no level of its own
        (``logger.level < 20``), even when the record is then discarded.
        """
        if not _workflow_log.isEnabledFor(_INFO):
            return dct if dct is not None else {}
        return super().collect_log_extras(dct)  # type: ignore[misc]

    def update_waiting_tasks(self) -> None:
        """Update every WAITING task of this (sub)process's own tree, as SpiffWorkflow does (nothing to
        walk when the index holds no WAITING task: a walk that updates nothing changes nothing)."""
        index = self.__dict__.get(INDEX)
        if index is not None and not index[_WAITING]:
            return
        tasks = (
            walk(self.task_tree, _WAITING, into_subprocesses=False)
            if _small(self.top_workflow)
            else TaskIterator(self.task_tree, state=_WAITING)
        )
        for task in tasks:
            task.task_spec._update(task)


class MotcuaSubWorkflow(_Walks, BpmnSubWorkflow):
    """A call activity's ``BpmnSubWorkflow`` that finds its tasks with ``walk`` and whose tasks are
    ``MotcuaTask`` (stored and restored as a ``BpmnSubWorkflow``)."""


class MotcuaWorkflow(_Walks, BpmnWorkflow):
    """A ``BpmnWorkflow`` that finds its tasks with ``walk``, whose tasks are ``MotcuaTask`` and whose call
    activities are ``MotcuaSubWorkflow`` (stored and restored as a ``BpmnWorkflow``)."""

    def create_subprocess(self, my_task: Task, spec_name: str) -> MotcuaSubWorkflow:
        # SpiffWorkflow's, with the engine's class for the call activity's workflow.
        subprocess = MotcuaSubWorkflow(
            self.subprocess_specs[spec_name], parent_task_id=my_task.id, top_workflow=self
        )
        self.subprocesses[my_task.id] = subprocess
        return subprocess
