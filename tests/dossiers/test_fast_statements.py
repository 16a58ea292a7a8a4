"""``FastStatement`` against SQLAlchemy on the same rows: the statements every request runs on the driver's
cursor must give exactly what ``Connection.execute`` gives (types, time zones, JSON text, NULLs), on SQLite
and PostgreSQL, inside and outside a unit's pipeline; and a dead connection met there costs one unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import OperationalError

from accounts import store as account_queries
from accounts.service import Accounts
from dossiers import store as dossier_store
from dossiers import task_context as context_module
from dossiers.tables import dossier_handovers, dossier_tasks, dossiers
from engine import fast_sql, hot_sql
from engine import store as engine_store
from engine.fast_sql import FastStatement
from engine.store import Store, create_db_engine
from tests.accounts.test_accounts import FAST, PASSWORD
from tests.dossiers.conftest import COPY_FORM


def _same(fast: Any, slow: Any) -> None:
    """A FastStatement row equals SQLAlchemy's row: values, their types and the names."""
    assert slow is not None and fast is not None
    assert fast._mapping == dict(slow._mapping)
    assert [type(v) for v in fast] == [type(v) for v in slow]
    for value in fast:
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)  # aware UTC, as UTCDateTime gives


def _submitted(desk: Any) -> dict[str, Any]:
    """A level-3 dossier submitted online, waiting at the reception desk's review."""
    code = desk.submit("2.000815")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": COPY_FORM}, actor="citizen-1")
    return desk.service.dossier(code)


def test_reads_give_what_sqlalchemy_gives(desk):
    dossier = _submitted(desk)
    [task] = dossier["tasks"]
    desk.service.engine.claim_task(task["id"], actor="desk.officer")  # the context has a claim
    engine = desk.service.engine
    with engine.store.unit_of_work(write=False) as uow:
        conn = uow.conn
        code = {"which_code": dossier["code"]}
        _same(
            dossier_store._GET_DOSSIER.first(conn, code), conn.execute(dossier_store._DOSSIER, code).first()
        )
        statement = context_module._SELECT.statement
        _same(
            context_module._SELECT.first(conn, {"task_id": task["id"]}),
            conn.execute(statement, {"task_id": task["id"]}).first(),  # type: ignore[arg-type]
        )
        for fast, values in (
            (engine_store._SELECT_ROW, {"instance_id": dossier["instance_id"]}),
            (engine_store._SELECT_HEAD, {"instance_id": dossier["instance_id"]}),
            (engine_store._SELECT_READY, {"task_id": task["id"]}),
            (engine_store._LATEST_DEFINITION, {"key": "dossier_l3"}),
        ):
            _same(fast.first(conn, values), conn.execute(fast.statement, values).first())  # type: ignore[arg-type]
        assert engine_store._SELECT_READY.first(conn, {"task_id": "no-such-task"}) is None


def test_the_bearer_token_reads_as_before(db_url, clock):
    store = Store(create_db_engine(db_url))
    accounts = Accounts(store, clock, hasher=FAST)
    try:
        accounts.create_user("lan.nguyen", PASSWORD, roles=["applicant"], full_name="Nguyễn Thị Lan")
        token, _expires, _principal = accounts.login("lan.nguyen", PASSWORD, remote="127.0.0.1")
        with store.unit_of_work(write=False) as uow:
            hashes = uow.conn.execute(text("SELECT token_hash FROM access_tokens")).scalars().all()
            assert hashes
            for token_hash in hashes:
                values = {"token_hash": token_hash}
                _same(
                    account_queries.token_with_user(uow.conn, token_hash),
                    uow.conn.execute(account_queries._TOKEN_WITH_USER, values).first(),
                )
            assert account_queries.token_with_user(uow.conn, "0" * 64) is None
        assert accounts.authenticate_token(token).username == "lan.nguyen"
    finally:
        store.engine.dispose()


def test_writes_land_as_sqlalchemy_would_write_them(desk):
    dossier = _submitted(desk)
    code = dossier["code"]
    at = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)
    store = desk.service.engine.store
    with store.unit_of_work() as uow:  # a writing unit: queued in the pipeline on PostgreSQL
        dossier_store.update_dossier(
            uow.conn, code, {"status": 3, "received_at": at, "supplement_items": ["A"]}
        )
        dossier_store.add_handovers(
            uow.conn,
            [
                {"dossier_code": code, "at": at, "element_id": "review", "actor": "cán bộ", "result": "done"},
                {"dossier_code": code, "at": at, "element_id": "appraise", "actor": "b", "note": "Ghi chú"},
            ],
        )
        # A read after queued writes sees them (the pipeline is flushed up to it, no sync point needed).
        row = dossier_store.get_dossier(uow.conn, code, for_update=True)
        assert row is not None and (row["status"], row["received_at"], row["supplement_items"]) == (
            3,
            at,
            ["A"],
        )
    with store.unit_of_work(write=False) as uow:
        stored = uow.conn.execute(select(dossiers).where(dossiers.c.code == code)).one()
        assert (stored.status, stored.received_at, stored.supplement_items) == (3, at, '["A"]')
        hops = uow.conn.execute(
            select(dossier_handovers.c.element_id, dossier_handovers.c.actor, dossier_handovers.c.note)
            .where(dossier_handovers.c.dossier_code == code, dossier_handovers.c.at == at)
            .order_by(dossier_handovers.c.id)
        ).all()
        assert [tuple(h) for h in hops] == [("review", "cán bộ", None), ("appraise", "b", "Ghi chú")]
        with pytest.raises(KeyError, match="no column nonsense"):
            dossier_store.update_dossier(uow.conn, code, {"nonsense": 1})


def test_open_tasks_of_an_instance_just_read_are_rewritten(desk):
    dossier = _submitted(desk)
    [task] = dossier["tasks"]
    store = desk.service.engine.store
    with store.unit_of_work() as uow:  # a stray row of the instance, as if left by an older version
        uow.conn.execute(
            dossier_tasks.insert().values(
                task_id="stray", instance_id=dossier["instance_id"], agency_code="X", lane="desk"
            )
        )
    desk.service.engine.instances.clear()  # the next step starts from the database: no known open tasks
    desk.do(dossier["code"], "review", {"decision": "accept"}, actor="desk.officer")
    with store.unit_of_work(write=False) as uow:
        ids = uow.conn.execute(
            select(dossier_tasks.c.task_id).where(dossier_tasks.c.instance_id == dossier["instance_id"])
        ).scalars()
        left = set(ids)
    assert "stray" not in left and task["id"] not in left and len(left) == 1


def test_expanding_parameters_are_refused(desk):
    statement = FastStatement(
        select(dossiers.c.code).where(dossiers.c.code.in_(bindparam("codes", expanding=True)))
    )
    with (
        desk.service.engine.store.unit_of_work(write=False) as uow,
        pytest.raises(ValueError, match="expanding"),
    ):
        statement.all(uow.conn, {"codes": ["a"]})


def test_after_a_restart_one_failed_unit_renews_the_whole_pool(postgres_url):
    """A driver statement that meets a dead connection fails its unit only: the pool then replaces every
    connection it made before, as when SQLAlchemy's own statement meets one, so a database restart costs
    one failed unit, not one per pooled connection."""
    store = Store(create_db_engine(postgres_url))
    code = "000.00.00.H26-260302-0001"
    try:
        with store.unit_of_work(write=False) as first, store.unit_of_work(write=False) as second:
            pids = [u.conn.execute(text("SELECT pg_backend_pid()")).scalar_one() for u in (first, second)]
        with create_db_engine(postgres_url).connect() as admin:  # both pooled connections die
            admin.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(:pids) AS pid"), {"pids": pids})
        with pytest.raises(OperationalError), store.unit_of_work(write=False) as uow:
            dossier_store.get_dossier(uow.conn, code)  # a driver statement finds its connection dead
        for _ in pids:  # the other pooled connection was replaced too
            with store.unit_of_work(write=False) as uow:
                assert dossier_store.get_dossier(uow.conn, code) is None
                assert uow.conn.execute(text("SELECT pg_backend_pid()")).scalar_one() not in pids
    finally:
        store.engine.dispose()


def test_the_tracker_reads_its_dossier_before_the_steps_run(desk, monkeypatch):
    """The dossier's read is queued as the unit starts (``DossierTracker.prefetch``), not after the steps:
    in PostgreSQL's pipeline it travels while they run, instead of being waited for at the end."""
    import psycopg
    from sqlalchemy import event

    dossier = _submitted(desk)
    sent: list[str] = []

    def note(query: Any) -> None:
        sent.append(" ".join(str(query).split())[:40])

    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        note(query)
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    for module in (hot_sql, fast_sql):  # writes queued through libpq (``pipeline_writes``)
        queue = module.queue_write

        def queue_write(raw: Any, sql: bytes, rows: Any, queue: Any = queue) -> None:
            note(sql.decode())
            queue(raw, sql, rows)

        monkeypatch.setattr(module, "queue_write", queue_write)
    db = desk.service.engine.store.engine

    def trace(dbapi: Any, _record: Any, _proxy: Any) -> None:
        if hasattr(dbapi, "set_trace_callback"):  # SQLite
            dbapi.set_trace_callback(note)

    event.listen(db, "checkout", trace)
    try:
        desk.do(dossier["code"], "review", {"decision": "accept"}, actor="desk.officer")
    finally:
        event.remove(db, "checkout", trace)
    reads = [n for n, s in enumerate(sent) if s.startswith("SELECT dossiers.")]
    updates = [n for n, s in enumerate(sent) if "UPDATE instances" in s]
    assert reads and updates and reads[-1] < updates[-1], sent
    assert desk.status(dossier["code"]) == 4  # received: the tracker used what it read
