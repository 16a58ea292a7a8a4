"""Writes queued through libpq in a PostgreSQL unit's pipeline (``engine.pipeline_writes``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from engine.pipeline_writes import Unsupported, numbered, numbered_pyformat, queue_write, text_value
from engine.store import Store, create_db_engine

_INSERT = (
    b"INSERT INTO calendar_days (day, working, note, created_by, created_at) VALUES ($1, $2, $3, $4, $5)"
)
_AT = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)


def test_values_are_sent_in_postgresql_text_form_with_psycopg_types():
    assert text_value(None) == (0, None)
    assert text_value("Hồ sơ") == (0, "Hồ sơ".encode())
    assert text_value(True) == (16, b"t")
    assert text_value(7) == (20, b"7")
    assert text_value(2**70) == (1700, str(2**70).encode())
    assert text_value(1.5) == (701, b"1.5")
    assert text_value(Decimal("12.50")) == (1700, b"12.50")
    assert text_value(_AT) == (1184, b"2026-11-28T23:00:00+00:00")
    assert text_value(datetime(2026, 1, 2, 3, 4)) == (1114, b"2026-01-02T03:04:00")
    assert text_value(date(2026, 9, 2)) == (1082, b"2026-09-02")
    assert text_value(time(7, 30)) == (1083, b"07:30:00")
    uid = UUID(int=5)
    assert text_value(uid) == (2950, str(uid).encode())
    with pytest.raises(Unsupported):
        text_value({"a": 1})  # JSON: left to psycopg's cursor by the caller


def test_markers_are_numbered():
    assert numbered("SELECT ? WHERE a = ? AND b = ?") == "SELECT $1 WHERE a = $2 AND b = $3"
    assert numbered("x = %s, y = %s", "%s") == "x = $1, y = $2"
    sql, order = numbered_pyformat("a = %(a)s AND b LIKE '10%%' AND c = %(c)s OR a2 = %(a)s")
    assert sql == "a = $1 AND b LIKE '10%' AND c = $2 OR a2 = $1"
    assert order == ["a", "c"]


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    """A store on the test PostgreSQL (the writes through libpq only exist there)."""
    store = Store(create_db_engine(postgres_url))
    yield store
    store.engine.dispose()


def _queue(uow: Any, rows: list[tuple[Any, ...]], sql: bytes = _INSERT) -> None:
    queue_write(uow.conn.connection.driver_connection, sql, rows)


def _days(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(text("SELECT day, working, note FROM calendar_days ORDER BY day"))
        ]


def _our_statements(uow: Any) -> list[str]:
    rows = uow.conn.execute(text("SELECT name FROM pg_prepared_statements WHERE name LIKE 'motcua_w%'"))
    return sorted(r[0] for r in rows)


def _row(day: int, note: str) -> tuple[Any, ...]:
    return (date(2026, 12, day), False, note, "admin", _AT)


def test_queued_writes_commit_with_the_unit_and_are_prepared_once(store):
    with store.unit_of_work() as uow:
        _queue(uow, [_row(1, "nghỉ bù"), _row(2, "nghỉ lễ")])
    with store.unit_of_work() as uow:
        _queue(uow, [_row(3, "Tết")])
        statements = _our_statements(uow)
    assert _days(store) == [
        (date(2026, 12, 1), False, "nghỉ bù"),
        (date(2026, 12, 2), False, "nghỉ lễ"),
        (date(2026, 12, 3), False, "Tết"),
    ]
    assert len(statements) == 1  # one PREPARE on this server connection, reused by the next unit


def test_a_failing_queued_write_fails_its_unit_and_keeps_nothing(store):
    with pytest.raises(IntegrityError), store.unit_of_work() as uow:
        _queue(uow, [_row(1, "first"), _row(1, "same day again")])  # primary key
    assert _days(store) == []
    with store.unit_of_work() as uow:  # the connection is fine afterwards
        _queue(uow, [_row(1, "again")])
    assert _days(store) == [(date(2026, 12, 1), False, "again")]


def test_statements_are_prepared_again_after_psycopg_deallocates_all(store):
    """psycopg sends DEALLOCATE ALL after a rollback when it holds prepared statements of its own; the
    engine's statements went with them, and the next unit must prepare them again rather than fail."""
    with store.unit_of_work() as uow:
        for _ in range(6):  # psycopg prepares a statement at its fifth run
            uow.conn.connection.driver_connection.execute("SELECT count(*) FROM calendar_days")
        _queue(uow, [_row(1, "kept")])
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        _queue(uow, [_row(2, "rolled back")])
        raise RuntimeError("the unit fails after queueing")
    with store.unit_of_work() as uow:
        assert _our_statements(uow) == []  # deallocated with psycopg's
        _queue(uow, [_row(3, "after the rollback")])
    assert [r[2] for r in _days(store)] == ["kept", "after the rollback"]


def test_a_prepare_aborted_with_its_pipeline_is_sent_again(store):
    """A PREPARE queued behind a statement that fails is never run; it must not be taken as done."""
    with pytest.raises(ProgrammingError), store.unit_of_work() as uow:
        raw = uow.conn.connection.driver_connection
        raw.cursor().execute("SELECT * FROM no_such_table")  # queued; fails in the server
        _queue(uow, [_row(1, "never")])
    with store.unit_of_work() as uow:
        _queue(uow, [_row(2, "prepared again")])
    assert [r[2] for r in _days(store)] == ["prepared again"]


def test_without_prepared_statements_writes_go_unnamed(store):
    """``prepare_threshold = None`` (as behind a pooler that cannot keep them): nothing is prepared."""
    with store.unit_of_work() as uow:
        uow.conn.connection.driver_connection.prepare_threshold = None
        _queue(uow, [_row(1, "không tên")])
        assert _our_statements(uow) == []
    assert _days(store) == [(date(2026, 12, 1), False, "không tên")]


def test_an_error_raised_by_the_queued_commit_fails_the_unit_and_keeps_nothing(store):
    """BEGIN and COMMIT are queued straight to libpq too: a constraint checked only at COMMIT (deferred)
    still fails the unit, and the connection serves the next one."""
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS deferred_notes"))
        conn.execute(
            text(
                "CREATE TABLE deferred_notes "
                "(n INTEGER, CONSTRAINT one_n UNIQUE (n) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    insert = b"INSERT INTO deferred_notes (n) VALUES ($1)"
    try:
        with pytest.raises(IntegrityError), store.unit_of_work() as uow:
            _queue(uow, [(1,), (1,)], insert)  # both run; the duplicate is only refused by the COMMIT
            _queue(uow, [(2,)], insert)
        with store.unit_of_work() as uow:
            _queue(uow, [(3,)], insert)
        with store.engine.connect() as conn:
            assert [r[0] for r in conn.execute(text("SELECT n FROM deferred_notes"))] == [3]
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE deferred_notes"))
