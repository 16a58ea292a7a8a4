"""Stored instance state: the serialized workflow without its spec, with a format version.

A workflow is stored as JSON produced by SpiffWorkflow's converters, minus the process spec (stored once
per definition version).  Finished tasks never change again, so their JSON fragments are cached on the
live workflow object and reused at the next save: a save costs the tasks that moved, not the whole tree.

Format history (``STATE_FORMAT``), each step a named function in ``MIGRATIONS``:
  1. ``{"spiff": <SpiffWorkflow serializer version>, "workflow": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, time
from decimal import Decimal
from typing import Any

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.migration.version_migration import MIGRATIONS as SPIFF_MIGRATIONS
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_VERSION
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from .errors import MotcuaError
from .specs import serializer_config

STATE_FORMAT = 1

_FINISHED = TaskState.COMPLETED | TaskState.CANCELLED
_PREDICTED = TaskState.PREDICTED_MASK | TaskState.FUTURE
_CACHE_ATTR = "_motcua_fragments"


class StateFormatError(MotcuaError):
    """A stored state cannot be read by this version of the engine."""

    code = "state_format_unsupported"


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
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
        workflow_class: type[BpmnWorkflow] = BpmnWorkflow,
        **workflow_kwargs: Any,
    ) -> BpmnWorkflow:
        if spec is None:
            return super().from_dict(dct)
        workflow = workflow_class(spec, subprocess_specs or {}, deserializing=True, **workflow_kwargs)
        from uuid import UUID

        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
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
    registry = BpmnWorkflowSerializer.configure(config)
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
                f'"{task_id}":{self._dump_workflow(sp, sp.tasks, cache, sub=True)}'
                for task_id, sp in workflow.subprocesses.items()
            )
            events = self._encoder.encode(self.registry.convert(workflow.bpmn_events))
        finally:
            self.registry._encoder_mode = False
        setattr(workflow, _CACHE_ATTR, cache)
        body = f'{top[:-1]},"subprocesses":{{{subs}}},"bpmn_events":{events}}}'
        return f'{{"spiff":"{SPIFF_VERSION}","workflow":{body}}}'

    def _dump_workflow(
        self, wf: Any, tasks: dict[Any, Any], cache: dict[Any, tuple[Any, str]], sub: bool = False
    ) -> str:
        fragments = [self._task_fragment(task_id, task, cache) for task_id, task in tasks.items()]
        head = {
            "data": self.registry.clean(wf.data),
            "correlations": wf.correlations,
            "last_task": str(wf.last_task.id) if wf.last_task is not None else None,
            "success": wf.success,
            "completed": wf.completed,
            "root": str(wf.task_tree.id),
        }
        if sub:
            head["parent_task_id"] = str(wf.parent_task_id)
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
            return f'"{task_id}":{self._encoder.encode(self.registry.convert(task))}'
        cached = cache.get(task_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        if task.state & _FINISHED:
            body = self.registry.convert(task)
        else:
            body = {
                "id": str(task.id),
                "parent": str(task._parent) if task._parent is not None else None,
                "children": [str(child) for child in task._children],
                "last_state_change": task.last_state_change,
                "state": task.state,
                "task_spec": task.task_spec.name,
                "triggered": task.triggered,
                "internal_data": {},
                "data": {},
                "delta": {},
                "typename": self.registry.typenames[type(task)],
            }
        fragment = f'"{task_id}":{self._encoder.encode(body)}'
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
        restore = self.registry.convert_from_dict[self.registry.typenames[BpmnWorkflow]]
        workflow: BpmnWorkflow = restore(
            wf_dct, spec=spec, subprocess_specs=subprocess_specs, **workflow_kwargs
        )
        return workflow


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
