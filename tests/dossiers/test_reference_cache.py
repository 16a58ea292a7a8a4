"""The working calendar and the procedures' terms are read from the database at most every few seconds per
process, and at once after this process changed them (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

import dossiers.reference_cache as reference_cache
from dossiers import store
from dossiers.reference_cache import ReferenceCache
from engine.store import create_db_engine
from tests.conftest import Ticks, migrated_sqlite

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Ticks:
    fake = Ticks()
    monkeypatch.setattr(reference_cache.time, "monotonic", fake)
    return fake


def test_a_value_is_read_once_per_ttl_and_per_database(db_url: str, tmp_path: Path, clock: Ticks) -> None:
    cache = ReferenceCache(ttl=5.0)
    one = create_db_engine(db_url)
    two = create_db_engine(migrated_sqlite(tmp_path / "two.db"))
    reads: list[str] = []

    def load(name: str):  # type: ignore[no-untyped-def]
        return lambda _conn: reads.append(name) or name

    with one.connect() as a, two.connect() as b:
        assert cache.get(a, "k", load("one")) == "one"
        assert cache.get(a, "k", load("again")) == "one"
        assert cache.get(b, "k", load("two")) == "two"  # another database has its own values
        clock.now += 4.9
        assert cache.get(a, "k", load("again")) == "one"
        clock.now += 0.2
        assert cache.get(a, "k", load("fresh")) == "fresh"
        cache.forget(a, "k")
        assert cache.get(a, "k", load("forgotten")) == "forgotten"
        cache.forget(b)
        assert cache.get(b, "k", load("all forgotten")) == "all forgotten"
    assert reads == ["one", "two", "fresh", "forgotten", "all forgotten"]
    one.dispose()
    two.dispose()


def test_a_value_read_before_the_change_commits_is_dropped_at_the_commit(db_url: str, clock: Ticks) -> None:
    cache = ReferenceCache(ttl=5.0)
    db = create_db_engine(db_url)
    with db.connect() as reader:
        with db.begin() as writer:
            writer.execute(text("SELECT 1"))
            cache.forget(writer, "k")  # the writer changed the value, not committed yet
            assert cache.get(reader, "k", lambda _conn: "old") == "old"  # another request reads meanwhile
        assert cache.get(reader, "k", lambda _conn: "new") == "new"  # the commit dropped the old value
        assert cache.get(reader, "k", lambda _conn: "again") == "new"
    db.dispose()


def test_a_calendar_change_made_here_is_seen_at_once(db_url: str, clock: Ticks) -> None:
    db = create_db_engine(db_url)
    tet = date(2027, 2, 8)
    with db.begin() as conn:
        assert tet not in store.calendar_overrides(conn).days_off
        store.set_calendar_day(
            conn, {"day": tet, "working": False, "note": "Tết", "created_by": "admin", "created_at": NOW}
        )
        assert tet in store.calendar_overrides(conn).days_off
        assert store.delete_calendar_day(conn, tet)
        assert tet not in store.calendar_overrides(conn).days_off
    db.dispose()


def test_a_change_made_elsewhere_is_seen_within_the_ttl(db_url: str, clock: Ticks) -> None:
    here, elsewhere = create_db_engine(db_url), create_db_engine(db_url)  # two processes' engines
    day = date(2027, 4, 30)
    with here.begin() as conn:
        assert day not in store.calendar_overrides(conn).days_off
    with elsewhere.begin() as conn:
        store.set_calendar_day(
            conn, {"day": day, "working": False, "note": "", "created_by": "admin", "created_at": NOW}
        )
    with here.begin() as conn:
        assert day not in store.calendar_overrides(conn).days_off  # still the cached calendar
        clock.now += reference_cache.TTL_SECONDS
        assert day in store.calendar_overrides(conn).days_off
    here.dispose()
    elsewhere.dispose()
