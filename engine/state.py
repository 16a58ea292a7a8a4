"""Stored instance state: the serialized workflow without its spec, with a format version.

A workflow is stored as JSON produced by SpiffWorkflow's converters, minus the process spec (stored once
per definition version).  Finished tasks never change again, so their JSON fragments are cached on the
live workflow object and reused at the next save: a save costs the tasks that moved, not the whole tree.

Format history (``STATE_FORMAT``), each step a named function in ``MIGRATIONS``:
  1. ``{"spiff": <SpiffWorkflow serializer version>, "workflow": {...}}``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import date, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnSubWorkflowConverter,
    BpmnWorkflowConverter,
    TaskConverter,
    WorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.migration.version_migration import MIGRATIONS as SPIFF_MIGRATIONS
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_VERSION
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from .errors import MotcuaError
from .specs import serializer_config
from .workflow import CHANGES, MotcuaSubWorkflow, MotcuaTask, MotcuaWorkflow

STATE_FORMAT = 1

_FINISHED = TaskState.COMPLETED | TaskState.CANCELLED
_PREDICTED = TaskState.PREDICTED_MASK | TaskState.FUTURE
_CACHE_ATTR = "_motcua_fragments"


class StateFormatError(MotcuaError):
    """A stored state cannot be read by this version of the engine."""

    code = "state_format_unsupported"


@functools.lru_cache(maxsize=8192)
def _uuid(text: str) -> UUID:
    """Parse a task id; each id is read about three times per load (the task, its parent, its children)."""
    return UUID(text)


class _UuidKeys:
    """Restores mappings keyed by task id through ``_uuid`` (SpiffWorkflow calls ``UUID`` on every key)."""

    registry: Any

    def mapping_from_dict(
        self, mapping: dict[str, Any], key_class: Any = None, **kwargs: Any
    ) -> dict[Any, Any]:
        restore = self.registry.restore
        if key_class is UUID:
            return {_uuid(k): restore(v, **kwargs) for k, v in mapping.items()}
        if key_class is None:
            return {k: restore(v, **kwargs) for k, v in mapping.items()}
        return {key_class(k): restore(v, **kwargs) for k, v in mapping.items()}


# A task id's text, cached: ``UUID.__str__`` formats the hex digits in Python, and a save writes each id of
# the tasks it converts several times (as the task, as a parent, as a child).
_id_text: Callable[[UUID], str] = functools.lru_cache(maxsize=16384)(str)


class FastTaskConverter(_UuidKeys, TaskConverter):
    """SpiffWorkflow's task converter, restoring the same tasks with less work.

    Loading a stored workflow is the cost of every unit of work that does not find its instance in memory
    (another API worker served the previous step), and it grows with the history: most stored tasks are
    finished ones whose ``internal_data`` and ``data`` are empty and whose ids repeat as parent and children
    of their neighbours.  Empty values skip the registry's recursive restore; ids are parsed once.  Tasks are
    restored as the engine's ``MotcuaTask``.
    """

    def __init__(self, target_class: Any, registry: Any, typename: str | None = None) -> None:
        super().__init__(target_class, registry, typename)
        self.target_class = MotcuaTask

    def to_dict(self, task: Task) -> dict[str, Any]:
        """SpiffWorkflow's ``TaskConverter.to_dict`` (the same dict), with the ids' text cached."""
        parent = task.parent
        if parent is None:
            data, delta = task.data, {}
        else:
            data = {}
            delta = {
                "updates": DeepMerge.get_updated_keys(parent.data, task.data),
                "deletions": DeepMerge.get_deleted_keys(parent.data, task.data),
            }
        return {
            "id": _id_text(task.id),
            "parent": _id_text(task._parent) if parent is not None else None,
            "children": [_id_text(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task.state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": self.registry.convert(task.internal_data),
            "data": data,
            "delta": delta,
        }

    def from_dict(self, dct: dict[str, Any], workflow: Any) -> Task:
        task_spec = workflow.spec.task_specs.get(dct["task_spec"])
        task = self.target_class(workflow, task_spec, state=dct["state"], id=_uuid(dct["id"]))
        parent = dct["parent"]
        task._parent = _uuid(parent) if parent is not None else None
        task._children = [_uuid(child) for child in dct["children"]]
        task.last_state_change = dct["last_state_change"]
        task.triggered = dct["triggered"]
        internal = dct["internal_data"]
        task.internal_data = self.registry.restore(internal) if internal else {}
        if isinstance(task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            task.workflow.top_workflow.event_manager.add_task(task)
        delta = dct.get("delta")
        if delta and task.parent is not None:
            data = DeepMerge.merge({}, task.parent.data)
            updates = delta.get("updates")
            if updates:
                data.update(self.registry.restore(updates))
            for key in delta.get("deletions", ()):
                data.pop(key, None)
        else:
            stored = dct["data"]
            data = self.registry.restore(stored) if stored else {}
        task.data = data
        return task


class FastSubWorkflowConverter(_UuidKeys, BpmnSubWorkflowConverter):
    """SpiffWorkflow's call-activity workflow converter with task ids parsed once (``_uuid``), restoring the
    engine's class (``MotcuaSubWorkflow``) under SpiffWorkflow's type name."""

    def __init__(self, target_class: Any, registry: Any, typename: str | None = None) -> None:
        super().__init__(target_class, registry, typename)
        self.target_class = MotcuaSubWorkflow


class SpeclessWorkflowConverter(_UuidKeys, BpmnWorkflowConverter):
    """Converts a top-level workflow without its specs; they are given back at restore time."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(
        self,
        dct: dict[str, Any],
        spec: BpmnProcessSpec | None = None,
        subprocess_specs: dict[str, BpmnProcessSpec] | None = None,
        workflow_class: type[BpmnWorkflow] = MotcuaWorkflow,
        **workflow_kwargs: Any,
    ) -> BpmnWorkflow:
        if spec is None:
            return super().from_dict(dct)
        workflow = workflow_class(spec, subprocess_specs or {}, deserializing=True, **workflow_kwargs)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(_uuid(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _register_value_types(registry: Any) -> None:
    """Teach the registry the value types that task data may hold beyond JSON's."""
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    registry.register(time, lambda v: {"value": v.isoformat()}, lambda v: time.fromisoformat(v["value"]))
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))


def build_serializer() -> BpmnWorkflowSerializer:
    """Return a SpiffWorkflow serializer for specs and spec-less workflow state."""
    config = serializer_config()
    config[BpmnWorkflow] = SpeclessWorkflowConverter
    config[BpmnSubWorkflow] = FastSubWorkflowConverter
    config[Task] = FastTaskConverter
    registry = BpmnWorkflowSerializer.configure(config)
    # The engine's subclasses are written as SpiffWorkflow's classes (the stored format does not change).
    registry.typenames[MotcuaWorkflow] = registry.typenames[BpmnWorkflow]
    registry.typenames[MotcuaSubWorkflow] = registry.typenames[BpmnSubWorkflow]
    registry.typenames[MotcuaTask] = registry.typenames[Task]
    _register_value_types(registry)
    return BpmnWorkflowSerializer(registry)


class StateCodec:
    """Turns live workflows into stored state and back.

    Args:
        serializer: from ``build_serializer``; shared, stateless between calls.
    """

    def __init__(self, serializer: BpmnWorkflowSerializer | None = None) -> None:
        self.serializer = serializer or build_serializer()
        self.registry = self.serializer.registry
        self._encoder = self.serializer._encoder_cls(separators=(",", ":"), ensure_ascii=False)
        self._workflow_converter = self.registry.convert_to_dict[self.registry.typenames[BpmnWorkflow]]

    # -- specs -------------------------------------------------------------------------------------
    def dump_specs(self, spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> str:
        """Serialize a process spec and the specs of its call activities to JSON."""
        dct = {
            "spec": self.registry.convert(spec),
            "subprocess_specs": {k: self.registry.convert(v) for k, v in subprocess_specs.items()},
        }
        return json.dumps(dct, ensure_ascii=False)

    def load_specs(self, text: str) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]:
        """Restore what ``dump_specs`` wrote."""
        dct = json.loads(text)
        spec = self.registry.restore(dct["spec"])
        subs = {k: self.registry.restore(v) for k, v in dct["subprocess_specs"].items()}
        return spec, subs

    # -- workflow state --------------------------------------------------------------------------
    def dumps(self, workflow: BpmnWorkflow) -> str:
        """Serialize a workflow's state (not its spec) to JSON, reusing fragments of finished tasks."""
        cache: dict[Any, tuple[Any, str]] = getattr(workflow, _CACHE_ATTR, None) or {}
        self.registry._encoder_mode = True
        try:
            top = self._dump_workflow(workflow, workflow.tasks, cache)
            subs = ",".join(
                f'"{_id_text(task_id)}":{self._dump_subprocess(task_id, sp, cache)}'
                for task_id, sp in workflow.subprocesses.items()
            )
            events = self._encoder.encode(self.registry.convert(workflow.bpmn_events))
        finally:
            self.registry._encoder_mode = False
        setattr(workflow, _CACHE_ATTR, cache)
        body = f'{top[:-1]},"subprocesses":{{{subs}}},"bpmn_events":{events}}}'
        return f'{{"spiff":"{SPIFF_VERSION}","workflow":{body}}}'

    def _dump_subprocess(self, task_id: Any, sp: Any, cache: dict[Any, tuple[Any, str]]) -> str:
        """Return the JSON of a call activity's workflow; a finished one's from the cache while none of its
        tasks was made, changed state or was removed since (``engine.workflow.CHANGES``: its data and head
        only change with a task's state)."""
        changes = sp.__dict__.get(CHANGES)
        if not sp.completed or changes is None:
            return self._dump_workflow(sp, sp.tasks, cache, sub=True)
        key = (changes, len(sp.tasks))
        slot = ("subprocess", task_id)
        cached = cache.get(slot)
        if cached is not None and cached[0] == key:
            return cached[1]
        text = self._dump_workflow(sp, sp.tasks, cache, sub=True)
        cache[slot] = (key, text)
        return text

    def _dump_workflow(
        self, wf: Any, tasks: dict[Any, Any], cache: dict[Any, tuple[Any, str]], sub: bool = False
    ) -> str:
        fragments = [self._task_fragment(task_id, task, cache) for task_id, task in tasks.items()]
        head = {
            "data": self.registry.clean(wf.data),
            "correlations": wf.correlations,
            "last_task": _id_text(wf.last_task.id) if wf.last_task is not None else None,
            "success": wf.success,
            "completed": wf.completed,
            "root": _id_text(wf.task_tree.id),
        }
        if sub:
            head["parent_task_id"] = _id_text(wf.parent_task_id)
            head["spec"] = wf.spec.name
            head["typename"] = self.registry.typenames[type(wf)]
        text = self._encoder.encode(head)
        return f'{text[:-1]},"tasks":{{{",".join(fragments)}}}}}'

    def _task_fragment(self, task_id: Any, task: Any, cache: dict[Any, tuple[Any, str]]) -> str:
        """Return the JSON of one task, from the cache when the task cannot have changed since.

        Finished tasks never change.  Predicted tasks with no data of their own are written with empty
        data and no delta (exactly what they hold), so their JSON depends only on the key below.
        """
        if task.state & _FINISHED:
            key: Any = (task.state, task.last_state_change)
        elif task.state & _PREDICTED and not task.data and not task.internal_data:
            key = (task.state, task.last_state_change, tuple(task._children), task.triggered)
        else:
            return f'"{_id_text(task_id)}":{self._encoder.encode(self.registry.convert(task))}'
        cached = cache.get(task_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        if task.state & _FINISHED:
            body = self.registry.convert(task)
        else:
            body = {
                "id": _id_text(task.id),
                "parent": _id_text(task._parent) if task._parent is not None else None,
                "children": [_id_text(child) for child in task._children],
                "last_state_change": task.last_state_change,
                "state": task.state,
                "task_spec": task.task_spec.name,
                "triggered": task.triggered,
                "internal_data": {},
                "data": {},
                "delta": {},
                "typename": self.registry.typenames[type(task)],
            }
        fragment = f'"{_id_text(task_id)}":{self._encoder.encode(body)}'
        cache[task_id] = (key, fragment)
        return fragment

    def loads(
        self,
        text: str,
        state_format: int,
        spec: BpmnProcessSpec,
        subprocess_specs: dict[str, BpmnProcessSpec],
        **workflow_kwargs: Any,
    ) -> BpmnWorkflow:
        """Restore a workflow from stored state, upgrading old formats first.

        Args:
            text: the stored JSON.
            state_format: the format version stored beside it.
            spec, subprocess_specs: the specs of the instance's definition version.
            workflow_kwargs: passed to the workflow constructor (e.g. ``script_engine``).

        Raises:
            StateFormatError: the format is newer than this engine or has no migration.
        """
        dct = upgrade(json.loads(text), state_format)
        wf_dct = dct["workflow"]
        spiff_version = dct.get("spiff", SPIFF_VERSION)
        if spiff_version != SPIFF_VERSION and spiff_version in SPIFF_MIGRATIONS:
            SPIFF_MIGRATIONS[spiff_version](wf_dct)
        # Taken before restoring: SpiffWorkflow pops each subprocess out of the dict as it restores it.
        stored = [wf_dct["tasks"], *(sub["tasks"] for sub in wf_dct.get("subprocesses", {}).values())]
        restore = self.registry.convert_from_dict[self.registry.typenames[BpmnWorkflow]]
        workflow: BpmnWorkflow = restore(
            wf_dct, spec=spec, subprocess_specs=subprocess_specs, **workflow_kwargs
        )
        self._seed_fragments(workflow, stored)
        return workflow

    def _seed_fragments(self, workflow: BpmnWorkflow, stored: list[dict[str, Any]]) -> None:
        """Cache the JSON of the finished tasks just read, as ``dumps`` would have cached it.

        A workflow loaded from the database (another process served its previous step) would otherwise
        convert every finished task again at its next save: the stored dict of a finished task is what
        converting it gives, so encoding that dict is enough, and several times cheaper.
        """
        by_id: dict[str, dict[str, Any]] = {}
        for tasks in stored:
            by_id.update(tasks)
        encode = self._encoder.encode
        cache: dict[Any, tuple[Any, str]] = {}
        for wf in (workflow, *workflow.subprocesses.values()):
            for task_id, task in wf.tasks.items():
                if task.state & _FINISHED:
                    text_id = _id_text(task_id)
                    body = by_id.get(text_id)
                    if body is not None:
                        cache[task_id] = ((task.state, task.last_state_change), f'"{text_id}":{encode(body)}')
        setattr(workflow, _CACHE_ATTR, cache)


# Named upgrades of the stored format: MIGRATIONS[n] turns format n into n + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upgrade(dct: dict[str, Any], state_format: int) -> dict[str, Any]:
    """Upgrade a stored state dict from ``state_format`` to ``STATE_FORMAT``.

    Raises:
        StateFormatError: when the format is unknown or newer than this engine.
    """
    if state_format > STATE_FORMAT:
        raise StateFormatError(
            f"Stored state format {state_format} is newer than this engine ({STATE_FORMAT})",
            state_format=state_format,
        )
    while state_format < STATE_FORMAT:
        step = MIGRATIONS.get(state_format)
        if step is None:
            raise StateFormatError(
                f"No migration from state format {state_format}", state_format=state_format
            )
        dct = step(dct)
        state_format += 1
    return dct
