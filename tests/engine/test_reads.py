"""Read-only units of work (``show``, ``data``): what they return, and that a workflow they load is kept for
the next unit of work in the same process, never in place of a newer one."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from engine.facade import Engine
from engine.runtime import Instance, InstanceCache
from tests.engine.conftest import bpmn_file


def _started(engine: Engine) -> dict:
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    return engine.start(
        "lifecycle_test", {"dossier_code": "H53-0001", "note": "Hồ sơ đủ"}, business_key="B-1"
    )


def test_data_is_the_data_show_gives(make_engine: Callable[..., Engine]) -> None:
    view = _started(make_engine())
    cold = make_engine()  # another process: nothing cached
    data = cold.data(view["id"])
    assert data == cold.show(view["id"])["data"] == view["data"]
    assert data["note"] == "Hồ sơ đủ"


def test_a_loaded_workflow_serves_the_next_unit_of_work(make_engine: Callable[..., Engine]) -> None:
    view = _started(make_engine())
    cold = make_engine()
    cold.show(view["id"])
    cached = cold.instances.peek(view["id"], view["row_version"], lambda instance: instance)
    assert cached is not None and cached.conn is None
    done = cold.complete_task(view["tasks"][0]["id"], {"complete": True}, actor="officer")
    assert done["row_version"] == view["row_version"] + 1
    # The completion ran on the cached workflow (no second load) and stays cached at its new version.
    assert cold.instances.peek(view["id"], done["row_version"], lambda instance: instance) is cached


def test_an_offer_never_replaces_a_newer_version() -> None:
    cache = InstanceCache(2)

    def instance(version: int) -> Instance:
        workflow = SimpleNamespace(completed=False)
        return Instance("i-1", 1, "p", None, version, workflow=workflow, created_at=None)  # type: ignore[arg-type]

    newer, older = instance(5), instance(4)
    cache.put(newer)
    cache.offer(older)
    assert cache.take("i-1") is newer
    cache.offer(older)
    assert cache.take("i-1") is older


def test_a_finished_instance_is_not_kept() -> None:
    cache = InstanceCache(2)
    live = Instance("i-1", 1, "p", None, 3, workflow=SimpleNamespace(completed=False), created_at=None)  # type: ignore[arg-type]
    done = Instance("i-2", 1, "p", None, 7, workflow=SimpleNamespace(completed=True), created_at=None)  # type: ignore[arg-type]
    cache.put(live)
    cache.put(done)
    cache.offer(done)
    assert cache.take("i-1") is live
    assert cache.take("i-2") is None
