"""Read-only units of work (``show``, ``data``): what they return, and that a workflow they load is kept for
the next unit of work in the same process, never in place of a newer one."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from engine.facade import Engine
from engine.runtime import Instance, InstanceCache
from tests.conftest import FakeClock
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


def _workflow(completed: bool) -> SimpleNamespace:
    """A stand-in for a workflow: what the cache reads (``completed``) and what disposing of it cuts."""
    return SimpleNamespace(completed=completed, subprocesses={}, tasks={}, task_tree=None, last_task=None)


def test_an_offer_never_replaces_a_newer_version() -> None:
    cache = InstanceCache(2)

    def instance(version: int) -> Instance:
        return Instance("i-1", 1, "p", None, version, workflow=_workflow(False), created_at=None)  # type: ignore[arg-type]

    newer, older = instance(5), instance(4)
    cache.put(newer)
    cache.offer(older)
    assert cache.take("i-1") is newer
    cache.offer(older)
    assert cache.take("i-1") is older


def test_a_finished_instance_is_not_kept() -> None:
    cache = InstanceCache(2)
    live = Instance("i-1", 1, "p", None, 3, workflow=_workflow(False), created_at=None)  # type: ignore[arg-type]
    done = Instance("i-2", 1, "p", None, 7, workflow=_workflow(True), created_at=None)  # type: ignore[arg-type]
    cache.put(live)
    cache.put(done)
    cache.offer(done)
    assert cache.take("i-1") is live
    assert cache.take("i-2") is None


@contextmanager
def _no_collector() -> Iterator[None]:
    """Switch the cyclic garbage collector off: what is freed meanwhile was freed by reference counting."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_an_evicted_instance_is_freed_without_the_collector(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(cache_size=1)
    first = _started(engine)
    cached = engine.instances.peek(first["id"], first["row_version"], lambda instance: instance)
    assert cached is not None
    workflow, task_count = weakref.ref(cached.workflow), len(cached.workflow.tasks)
    del cached
    assert task_count > 5
    with _no_collector():
        second = engine.start("lifecycle_test", {"dossier_code": "H53-0002"}, business_key="B-2")
        assert workflow() is None  # pushed out by the second instance, and gone at once
    # The instance still in the cache is whole: its next step runs on it.
    done = engine.complete_task(second["tasks"][0]["id"], {"complete": True}, actor="officer")
    assert done["row_version"] == second["row_version"] + 1


def test_a_stale_instance_is_freed_without_the_collector(make_engine: Callable[..., Engine]) -> None:
    engine, other = make_engine(), make_engine()
    view = _started(engine)
    cached = engine.instances.peek(view["id"], view["row_version"], lambda instance: instance)
    assert cached is not None
    stale = weakref.ref(cached.workflow)
    del cached
    # Another process moves the instance on: this process's copy is stale.
    moved = other.complete_task(view["tasks"][0]["id"], {"complete": True, "copies": 1}, actor="officer")
    with _no_collector():
        later = engine.show(view["id"])  # loads the new version, which replaces the stale copy
        assert stale() is None
    assert later["row_version"] == moved["row_version"]
    assert engine.instances.holds(view["id"], moved["row_version"])


def test_a_finished_instance_is_freed_without_the_collector(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine()
    view = _started(engine)
    view = engine.complete_task(view["tasks"][0]["id"], {"complete": True, "copies": 1}, actor="officer")
    engine.send_message("payment.confirmed", {"dossier_code": "H53-0001"}, {"paid_amount": 1}, actor="bank")
    clock.advance(hours=2)
    engine.fire_due_timers()
    view = engine.show(view["id"])
    cached = engine.instances.peek(view["id"], view["row_version"], lambda instance: instance)
    assert cached is not None
    workflow = weakref.ref(cached.workflow)
    del cached
    with _no_collector():
        done = engine.complete_task(view["tasks"][0]["id"], {"approved": True}, actor="leader")
        assert done["status"] == "completed" and done["data"]["approved"] is True
        assert workflow() is None


def test_show_queries_the_database_without_holding_the_cache(
    make_engine: Callable[..., Engine], monkeypatch
) -> None:
    """The workflow part of ``show`` is read under the cache's lock; its queries (history, waits) run after,
    so that other requests of the process can take and put instances meanwhile."""
    from engine.store import UnitOfWork

    engine = make_engine()
    view = _started(engine)
    assert engine.instances.holds(view["id"], view["row_version"])
    held: list[bool] = []
    original = UnitOfWork.audit_of

    def audit_of(self: UnitOfWork, instance_id: str) -> Any:
        held.append(engine.instances._lock.locked())
        return original(self, instance_id)

    monkeypatch.setattr(UnitOfWork, "audit_of", audit_of)
    shown = engine.show(view["id"])
    assert held == [False]
    assert shown["data"] == view["data"] and shown["history"][0]["action"] == "started"
    assert shown["processes"] and shown["tasks"][0]["id"] == view["tasks"][0]["id"]
