"""A workflow loaded from the database (another process served its previous step) saves exactly as it was
stored, and its finished tasks come from the fragment cache seeded at load, not converted again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from dossiers.timer_functions import timer_functions
from engine.facade import Engine
from handlers import HandlerRegistry
from tests.engine.conftest import dossier_registry, fresh_dump

BPMN = Path(__file__).resolve().parents[2] / "workflows" / "bpmn"
FINISHED = TaskState.COMPLETED | TaskState.CANCELLED


@pytest.fixture
def registry() -> HandlerRegistry:
    return dossier_registry()


def _documents() -> list[tuple[str, bytes]]:
    paths = [BPMN / "dossier_l3.bpmn", *sorted((BPMN / "fragments").glob("*.bpmn"))]
    return [(path.name, path.read_bytes()) for path in paths]


def _reload_and_check(engine: Engine, instance_id: str) -> None:
    """Load the instance as a cold process would; its next save must be byte for byte a fresh one."""
    engine.instances.clear()
    with engine.store.unit_of_work(write=False) as uow:
        head = uow.instance_head(instance_id)
        stored = uow.instance_state(instance_id).state
        workflow = engine._load(uow, head).workflow
    cache = workflow._motcua_fragments
    finished = [
        task_id
        for wf in (workflow, *workflow.subprocesses.values())
        for task_id, task in wf.tasks.items()
        if task.state & FINISHED
    ]
    assert sorted(map(str, cache)) == sorted(map(str, finished))
    # The engine's task converter writes the same dict as SpiffWorkflow's (ids' text cached).
    registry = engine.codec.registry
    converter = registry.convert_to_dict[registry.typenames[Task]].args[1].__self__
    for wf in (workflow, *workflow.subprocesses.values()):
        for task in wf.tasks.values():
            assert converter.to_dict(task) == TaskConverter.to_dict(converter, task)
    seeded = engine.codec.dumps(workflow)
    assert seeded == fresh_dump(engine.codec, workflow) == stored


def test_cold_loads_save_exactly_what_was_stored(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    engine.add_timer_functions(timer_functions)
    engine.deploy(_documents(), deployed_by="analyst")
    data = {
        "dossier_code": "000.00.01.H53-261130-0001",
        "procedure_code": "2.000815",
        "level": 3,
        "fees": [],
        "applicant": {"name": "Nguyễn Văn An", "address": "12 Tràng Tiền"},
        "form_data": {"ho_ten": "Nguyễn Văn An"},
    }
    view = engine.start("dossier_l3", data, business_key=data["dossier_code"], actor="citizen")
    steps: list[tuple[str, dict[str, Any]]] = [
        ("information", {}),
        ("submit_online", {"form_data": data["form_data"]}),
    ]
    for round_ in range(2):
        steps += [
            ("review", {"decision": "supplement", "supplement_items": [f"Bản sao CCCD (lần {round_})"]}),
            ("supplement", {"supplement_note": "Đã bổ sung", "attachments": ["x.pdf"]}),
        ]
    steps += [("review", {"decision": "accept"})]
    for element_id, task_data in steps:
        _reload_and_check(engine, view["id"])
        [task] = view["tasks"]
        assert task["element_id"] == element_id
        view = engine.complete_task(task["id"], task_data, actor="someone")  # on the cold-loaded workflow
    _reload_and_check(engine, view["id"])
    assert [task["element_id"] for task in view["tasks"]] == ["appraise"]
