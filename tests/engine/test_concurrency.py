"""Two writers on one instance: exactly one commits, the others get a conflict; nothing half-written."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from engine import tables
from engine.errors import ConflictError
from tests.engine.conftest import bpmn_file

THREADS = 20


def _race(engines, task_id):
    barrier = threading.Barrier(len(engines))
    outcomes: list[object] = [None] * len(engines)

    def work(index: int) -> None:
        barrier.wait()
        try:
            engines[index].complete_task(task_id, {"complete": True, "copies": index + 1}, actor=f"u{index}")
            outcomes[index] = "ok"
        except ConflictError as exc:
            outcomes[index] = exc
        except Exception as exc:
            outcomes[index] = f"unexpected {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


@pytest.mark.parametrize("shared", [True, False], ids=["one-process", "many-processes"])
def test_twenty_threads_complete_one_task(make_engine, shared):
    first = make_engine()
    first.deploy([bpmn_file("lifecycle.bpmn")])
    view = first.start("lifecycle_test", {"dossier_code": "RACE"}, business_key="RACE")
    task_id = view["tasks"][0]["id"]
    engines = [first] * THREADS if shared else [make_engine() for _ in range(THREADS)]

    outcomes = _race(engines, task_id)

    assert outcomes.count("ok") == 1, outcomes
    assert all(isinstance(o, ConflictError) for o in outcomes if o != "ok"), outcomes
    winner = outcomes.index("ok")
    final = make_engine().show(view["id"])
    assert final["row_version"] == view["row_version"] + 1
    assert final["data"]["copies"] == winner + 1
    assert [h["action"] for h in final["history"]].count("task_completed") == 1
    with first.store.engine.connect() as conn:
        ready = conn.execute(select(func.count()).select_from(tables.ready_tasks)).scalar_one()
        subs = conn.execute(select(func.count()).select_from(tables.message_subscriptions)).scalar_one()
    assert (ready, subs) == (0, 1)
