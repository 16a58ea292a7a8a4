"""Our own task spec classes, where SpiffWorkflow's defaults do not fit.

``ServiceTask`` keeps the handler's result as Python values (``Decimal``, ``date``) instead of round-tripping
it through JSON text as SpiffWorkflow's service task does, which would turn money into floats.

Timer events get the engine's timer definitions (``engine.timer_specs``): the parser puts them into every
spec it produces, and the serializer restores stored specs to them (they keep SpiffWorkflow's class names).
"""

from __future__ import annotations

from typing import Any, ClassVar

from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask as SpiffServiceTask

from .timer_specs import REPLACED, adopt_timers


class ServiceTask(SpiffServiceTask):
    """A BPMN service task whose operator is dispatched by the engine's handler registry."""

    def _execute(self, task: Any) -> bool:
        params = {name: param["value"] for name, param in self.evaluate_params(task).items()}
        engine = task.workflow.script_engine
        task.data[self.result_variable] = engine.call_service_values(task, self.operation_name, params)
        return True


class MotcuaBpmnParser(SpiffBpmnParser):
    """SpiffWorkflow's parser with our service task and our timer events."""

    OVERRIDE_PARSER_CLASSES: ClassVar[dict[str, Any]] = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, ServiceTask),
    }

    def get_spec(self, process_id: str, required: bool = True) -> Any:
        """Return the spec of a process (every spec, called ones too, comes through here), with our timers."""
        spec = super().get_spec(process_id, required=required)
        if spec is not None:
            adopt_timers(spec)
        return spec


def serializer_config() -> dict[Any, Any]:
    """Return SpiffWorkflow's serializer configuration with our spec classes swapped in."""
    config = dict(SPIFF_CONFIG)
    config.pop(SpiffServiceTask, None)
    config[ServiceTask] = ServiceTaskConverter
    for spiff_class, ours in REPLACED.items():
        config.pop(spiff_class, None)
        config[ours] = TimerConditionalEventDefinitionConverter
    return config
