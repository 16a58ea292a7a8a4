"""How units of work reach the database: one pipeline per writing unit on PostgreSQL, reads in autocommit,
one connection lent to the units of a request, and completions that start from a context just read.

Every test runs on SQLite and PostgreSQL; the outcomes are the same, only PostgreSQL queues the writes.
"""

from __future__ import annotations

from typing import Any

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from engine.errors import ConflictError, StaleVersionError, TaskStateError
from engine.store import UnitOfWork
from tests.engine.conftest import bpmn_file

FORM = {"complete": True, "copies": 1}


def _started(engine: Any, code: str = "U-1") -> dict[str, Any]:
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    return engine.start("lifecycle_test", {"dossier_code": code}, business_key=code)


def _dbapi(uow: UnitOfWork) -> Any:
    return uow.conn.connection.dbapi_connection


def test_a_completion_from_a_current_context_reads_nothing_more(make_engine, monkeypatch):
    engine = make_engine()
    view = _started(engine)
    [task] = view["tasks"]
    reads: list[str] = []
    original = UnitOfWork.ready_task_version

    def counted(self: UnitOfWork, task_id: str) -> Any:
        reads.append(task_id)
        return original(self, task_id)

    monkeypatch.setattr(UnitOfWork, "ready_task_version", counted)
    done = engine.complete_task(task["id"], FORM, actor="desk", seen=(view["id"], view["row_version"], None))
    assert reads == []
    assert done["row_version"] == view["row_version"] + 1
    # With a context this process does not hold, the unit reads the instance row, not the task.
    other = _started(engine, "U-2")
    engine.instances.clear()
    done = engine.complete_task(other["tasks"][0]["id"], FORM, actor="desk", seen=(other["id"], 1, None))
    assert reads == []
    assert done["row_version"] == 2
    # Without a context, the task is read in the unit.
    third = _started(engine, "U-3")
    engine.instances.clear()
    engine.complete_task(third["tasks"][0]["id"], FORM, actor="desk")
    assert reads == [third["tasks"][0]["id"]]


def test_a_context_not_held_here_is_checked_against_the_stored_instance(make_engine):
    first, second = make_engine(), make_engine()
    view = _started(first)
    [task] = view["tasks"]
    second.complete_task(task["id"], {"complete": True, "copies": 3}, actor="desk.b")
    first.instances.clear()  # nothing cached: the unit loads the instance as stored now
    with pytest.raises(TaskStateError, match="already completed"):
        first.complete_task(task["id"], FORM, actor="desk.a", seen=(view["id"], view["row_version"], None))
    final = make_engine().show(view["id"])
    assert [h["action"] for h in final["history"]].count("task_completed") == 1
    assert final["data"]["copies"] == 3


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "not-cached"])
def test_a_claim_taken_after_the_context_was_read_refuses_the_completion(make_engine, cached):
    engine = make_engine()
    view = _started(engine)
    [task] = view["tasks"]
    seen = (view["id"], view["row_version"], None)  # read while nobody held the task
    make_engine().claim_task(task["id"], "desk.b")
    if not cached:
        engine.instances.clear()
    with pytest.raises(ConflictError, match=r"claimed by desk\.b"):
        engine.complete_task(task["id"], FORM, actor="desk.a", seen=seen)
    after = make_engine().show(view["id"])
    assert after["row_version"] == view["row_version"]
    assert [t["id"] for t in after["tasks"]] == [task["id"]]


def test_a_completion_from_a_stale_context_is_decided_by_the_database(make_engine):
    first, second = make_engine(), make_engine()
    view = _started(first)  # the first process caches the instance at this version
    [task] = view["tasks"]
    second.complete_task(task["id"], {"complete": True, "copies": 3}, actor="desk.b")
    # The first process read the task before the second completed it: its attempt is refused by the
    # version check, and the retry finds the task done.
    with pytest.raises(TaskStateError, match="already completed"):
        first.complete_task(task["id"], FORM, actor="desk.a", seen=(view["id"], view["row_version"], None))
    final = make_engine().show(view["id"])
    assert [h["action"] for h in final["history"]].count("task_completed") == 1
    assert final["data"]["copies"] == 3
    assert final["row_version"] == view["row_version"] + 1


def test_a_context_claimed_by_someone_else_refuses_the_completion(make_engine):
    engine = make_engine()
    view = _started(engine)
    [task] = view["tasks"]
    seen = (view["id"], view["row_version"], "desk.b")
    with pytest.raises(ConflictError, match=r"claimed by desk\.b"):
        engine.complete_task(task["id"], FORM, actor="desk.a", seen=seen)
    assert engine.show(view["id"])["row_version"] == view["row_version"]


def test_a_lost_race_is_a_stale_version(make_engine):
    first, second = make_engine(), make_engine()
    view = _started(first)
    second.complete_task(view["tasks"][0]["id"], FORM, actor="desk")
    instance_id, version = view["id"], view["row_version"]
    with pytest.raises(StaleVersionError), first.store.unit_of_work() as uow:
        values = {"status": "running", "state": "{}", "state_format": 1, "updated_at": first.now()}
        uow.hot.update_instance(instance_id, version, {**values, "completed_at": None})
        # The written-rows check happens in the unit's commit on PostgreSQL, at once on SQLite:
        cursor = uow.hot.update_instance(instance_id, version, {**values, "completed_at": None})
        if cursor is not None and cursor.rowcount != 1:
            raise StaleVersionError("lost")
    assert first.show(instance_id)["row_version"] == version + 1


def test_a_failing_queued_write_fails_the_whole_unit(make_engine):
    engine = make_engine()
    view = _started(engine)
    [task] = view["tasks"]
    duplicate = {**task, "created_at": engine.now()}
    with engine.store.unit_of_work(write=False) as uow:
        audit_before = len(uow.audit_of(view["id"]))
    with pytest.raises(IntegrityError), engine.store.unit_of_work() as uow:
        uow.add_audit([{**_audit(view, engine), "action": "note"}])
        uow.hot.insert_ready([duplicate])  # the task's own id again: a primary key violation
    with engine.store.unit_of_work(write=False) as uow:
        assert len(uow.audit_of(view["id"])) == audit_before  # the audit row went with the rest


def _audit(view: dict[str, Any], engine: Any) -> dict[str, Any]:
    return {
        "instance_id": view["id"],
        "task_id": None,
        "element_id": None,
        "action": "note",
        "actor": "test",
        "at": engine.now(),
        "details": None,
    }


def test_units_in_a_lent_block_share_one_connection(make_engine):
    store = make_engine().store
    with store.lend_connection():
        with store.unit_of_work(write=False) as first:
            reader = _dbapi(first)
        with store.unit_of_work() as second:
            writer = _dbapi(second)
            with store.unit_of_work(write=False) as inner:  # opened while the other is open
                nested = _dbapi(inner)
        with pytest.raises(RuntimeError), store.unit_of_work():
            raise RuntimeError("the unit fails")
        with store.unit_of_work(write=False) as after:  # a fresh connection after a failure
            assert after.conn.execute(text("SELECT 1")).scalar() == 1
    assert reader is writer
    assert nested is not writer
    with store.unit_of_work(write=False) as outside:  # outside the block: from the pool as usual
        assert outside.conn.execute(text("SELECT 1")).scalar() == 1


def test_reading_units_open_no_transaction_on_postgresql(make_engine):
    store = make_engine().store
    with store.unit_of_work(write=False) as reading:
        reading.conn.execute(text("SELECT 1"))
        reading_open = _open(reading)
    with store.unit_of_work() as writing:
        writing.conn.execute(text("SELECT 1"))
        writing_open = _open(writing)
    # PostgreSQL: autocommit for reads (READ COMMITTED reads see no more inside a transaction); SQLite
    # keeps a read transaction (its snapshot spans the unit).
    assert (reading_open, writing_open) == ((False, True) if store.postgres else (True, True))


def _open(uow: UnitOfWork) -> bool:
    raw = _dbapi(uow)
    if hasattr(raw, "info"):  # psycopg
        return bool(raw.info.transaction_status != TransactionStatus.IDLE)
    return bool(raw.in_transaction)


def test_a_completion_on_a_cached_instance_reads_nothing_more(make_engine, monkeypatch):
    engine = make_engine()
    view = _started(engine)
    reads: list[str] = []
    original = UnitOfWork.ready_task_version
    monkeypatch.setattr(
        UnitOfWork, "ready_task_version", lambda self, t: reads.append(t) or original(self, t)
    )
    done = engine.complete_task(view["tasks"][0]["id"], FORM, actor="desk")
    assert reads == []  # the task was ready in the instance this process cached at its start
    assert done["row_version"] == view["row_version"] + 1


def test_a_claim_held_by_someone_else_stops_a_completion_on_a_cached_instance(make_engine):
    engine = make_engine()
    view = _started(engine)
    [task] = view["tasks"]
    engine.claim_task(task["id"], "desk.b")
    with pytest.raises(ConflictError, match=r"claimed by desk\.b") as refused:
        engine.complete_task(task["id"], FORM, actor="desk.a")
    assert refused.value.details.get("claimed_by") == "desk.b"
    after = make_engine().show(view["id"])
    assert after["row_version"] == view["row_version"]  # nothing of the attempt was written
    assert _holder(engine, task["id"]) == "desk.b"
    done = engine.complete_task(task["id"], FORM, actor="desk.b")  # the holder may, and the claim goes
    assert done["row_version"] == view["row_version"] + 1
    assert _holder(engine, task["id"]) is None


def _holder(engine: Any, task_id: str) -> str | None:
    with engine.store.unit_of_work(write=False) as uow:
        claim = uow.claim_of(task_id)
    return claim.claimed_by if claim is not None else None


def test_a_completion_on_a_stale_cached_instance_is_retried_from_the_database(make_engine):
    first, second = make_engine(), make_engine()
    view = _started(first)  # cached by the first process
    [task] = view["tasks"]
    second.complete_task(task["id"], {"complete": True, "copies": 3}, actor="desk.b")
    with pytest.raises(TaskStateError, match="already completed"):
        first.complete_task(task["id"], FORM, actor="desk.a")
    final = make_engine().show(view["id"])
    assert [h["action"] for h in final["history"]].count("task_completed") == 1
    assert final["data"]["copies"] == 3


def test_an_autocommit_connection_runs_statements_that_refuse_a_transaction(make_engine):
    db = make_engine().store.engine
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM"))  # fails inside a transaction block, on both databases
    with db.begin() as conn:  # and a plain connection still gets its transaction
        assert conn.execute(text("SELECT 1")).scalar() == 1
        assert _open_raw(conn.connection.dbapi_connection)


def _open_raw(raw: Any) -> bool:
    if hasattr(raw, "info"):  # psycopg
        return bool(raw.info.transaction_status != TransactionStatus.IDLE)
    return bool(raw.in_transaction)


def test_a_cold_instance_is_read_in_one_statement(make_engine, monkeypatch):
    """A process that holds no copy of the instance reads its head and state together; one that holds a
    copy reads the head alone first (the copy may be current: no state to fetch)."""
    first = make_engine()
    view = _started(first)
    calls: list[str] = []
    for name in ("instance_head", "instance_state", "instance_row"):
        original = getattr(UnitOfWork, name)
        monkeypatch.setattr(
            UnitOfWork, name, lambda self, i, _n=name, _o=original: calls.append(_n) or _o(self, i)
        )
    cold = make_engine()
    done = cold.complete_task(view["tasks"][0]["id"], FORM, actor="desk", seen=(view["id"], 1, None))
    assert calls == ["instance_row"] and done["row_version"] == view["row_version"] + 1
    calls.clear()
    assert make_engine().show(view["id"])["row_version"] == done["row_version"]
    assert calls == ["instance_row"]
    # The first process still holds the version of the start: the head tells it is stale, then the row.
    calls.clear()
    assert first.show(view["id"])["row_version"] == done["row_version"]
    assert calls == ["instance_head", "instance_state"]


def test_units_reuse_the_connection_used_last(make_engine):
    """The pool is last-in-first-out: after a moment that needed several connections, the units that follow
    keep working on the one used last, not on each pooled connection in turn (each a server process with
    its own prepared statements and caches)."""
    store = make_engine().store
    with (
        store.unit_of_work(write=False) as a,
        store.unit_of_work(write=False) as b,
        store.unit_of_work(write=False) as c,
    ):
        opened = {id(_dbapi(u)) for u in (a, b, c)}
    assert len(opened) == 3
    used = []
    for _ in range(6):
        with store.unit_of_work(write=False) as uow:
            used.append(id(_dbapi(uow)))
    assert len(set(used)) == 1 and used[0] in opened


def test_a_claim_is_one_statement_without_a_transaction_on_postgresql(make_engine, monkeypatch):
    """A claim writes with one statement, atomic on its own: on PostgreSQL it runs in autocommit (one round
    trip, no BEGIN and no COMMIT) and is visible to other connections as soon as it returns."""
    import psycopg

    engine = make_engine()
    view = _started(engine)
    [task] = view["tasks"]
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def traced(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query).split()[0].upper())
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", traced)
    engine.claim_task(task["id"], "desk.a")
    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    with engine.store.engine.connect() as other:
        holder = other.execute(
            text("SELECT claimed_by FROM task_claims WHERE task_id = :t"), {"t": task["id"]}
        )
        assert holder.scalar_one() == "desk.a"
    if engine.store.postgres:
        assert sent == ["INSERT"], sent
    with pytest.raises(ConflictError):  # the claim holds: someone else is refused
        engine.claim_task(task["id"], "desk.b")


def test_on_postgresql_the_state_is_written_last_after_a_checked_version(make_engine, monkeypatch):
    """PostgreSQL: a unit's first write checks and bumps the instance's version (so a stale writer fails
    there, before any other write), everything else follows, and the serialised state is written last,
    so that the server writes the rest while the state is being serialised."""
    from engine import hot_sql

    engine = make_engine()
    view = _started(engine)
    [task] = view["tasks"]
    queued: list[str] = []
    queue = hot_sql.queue_write

    def noted(raw: Any, sql: bytes, rows: Any) -> None:
        queued.append(" ".join(sql.decode().split())[:40])
        queue(raw, sql, rows)

    monkeypatch.setattr(hot_sql, "queue_write", noted)
    done = engine.complete_task(task["id"], FORM, actor="desk")
    if engine.store.engine.dialect.name != "postgresql":
        assert queued == []  # SQLite runs each statement at once, the whole row in one
        return
    # (The claim's release comes first: it belongs to finding the task, before the instance is touched.)
    instance_writes = [sql for sql in queued if not sql.startswith("DELETE FROM task_claims")]
    assert instance_writes[0].startswith("WITH written AS (UPDATE instances SET")
    assert instance_writes[-1].startswith("UPDATE instances SET state =")
    assert len(instance_writes) > 3
    engine.instances.clear()  # read back from the database: the new state and the new version
    shown = engine.show(view["id"])
    assert shown["row_version"] == view["row_version"] + 1
    assert (
        [t["element_id"] for t in shown["tasks"]]
        == [t["element_id"] for t in done["tasks"]]
        != [task["element_id"]]
    )


def test_on_postgresql_a_stale_writer_fails_at_its_first_write(make_engine):
    first, second = make_engine(), make_engine()
    view = _started(first)
    done = second.complete_task(view["tasks"][0]["id"], FORM, actor="desk")
    if first.store.engine.dialect.name != "postgresql":
        return
    with pytest.raises(StaleVersionError), first.store.unit_of_work() as uow:
        values = {"status": "running", "state_format": 1, "updated_at": first.now(), "completed_at": None}
        uow.hot.update_instance(view["id"], view["row_version"], values)  # version and head only
        # One ready task twice: a primary key violation, had the stale check not come first.
        row = {**view["tasks"][0], "created_at": first.now()}
        uow.hot.insert_ready([row, row])
        uow.hot.update_instance_state(view["id"], "{}")
    shown = second.show(view["id"])
    assert shown["row_version"] == view["row_version"] + 1 and shown["tasks"] == done["tasks"]
