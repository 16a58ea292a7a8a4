"""Shared fixtures: a real SQLite file and, when configured, the real PostgreSQL, each freshly migrated.

Database tests take the ``db_url`` fixture and run once per backend.  ``MOTCUA_TEST_POSTGRES_URL`` turns the
PostgreSQL run on; under CI (``CI=true``) a missing or unreachable PostgreSQL fails the run instead of
skipping it.  Each PostgreSQL test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from engine.facade import Engine
from engine.runtime import RetryPolicy, ServiceContext
from engine.store import Store, create_db_engine
from handlers import HandlerRegistry, default_registry
from motcua.schema import upgrade

DATA = Path(__file__).resolve().parent / "data"
POSTGRES_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _walks_checked_against_spiffworkflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test checks the engine's task walks (``engine.workflow.walk``, behind its workflows'
    ``get_tasks(state=...)`` and ``update_waiting_tasks``) against SpiffWorkflow's iterators: each walk
    yields, step by step, what ``BpmnTaskIterator`` / ``TaskIterator`` yields (both lazy, so a caller
    changing the tree meanwhile is checked too)."""
    from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
    from SpiffWorkflow.util.task import TaskIterator

    from engine import workflow as engine_workflow

    walk = engine_workflow.walk

    def checked_walk(root: Any, state: int, *, into_subprocesses: bool) -> Iterator[Any]:
        iterator = BpmnTaskIterator if into_subprocesses else TaskIterator
        expected = iterator(root, state=state)
        for task in walk(root, state, into_subprocesses=into_subprocesses):
            assert task is next(expected, None)
            yield task
        assert next(expected, None) is None

    monkeypatch.setattr(engine_workflow, "walk", checked_walk)

    # The index of tasks by state answers for the walks when it holds at most one task: each answer is
    # checked against SpiffWorkflow's iterator too, and so is every walk it skips.
    indexed = engine_workflow._Walks._indexed

    def checked_indexed(self: Any, state: int) -> Any:
        found = indexed(self, state)
        if found is not None:
            assert found == list(BpmnTaskIterator(self.task_tree, state=state))
        return found

    monkeypatch.setattr(engine_workflow._Walks, "_indexed", checked_indexed)
    update_waiting = engine_workflow._Walks.update_waiting_tasks

    def checked_update_waiting(self: Any) -> None:
        index = self.__dict__.get(engine_workflow.INDEX)
        if index is not None and not index[engine_workflow._WAITING]:
            assert next(TaskIterator(self.task_tree, state=engine_workflow._WAITING), None) is None
        update_waiting(self)

    monkeypatch.setattr(engine_workflow._Walks, "update_waiting_tasks", checked_update_waiting)


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not POSTGRES_URL:
        raise pytest.UsageError("CI=true but MOTCUA_TEST_POSTGRES_URL is not set: PostgreSQL tests must run")


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if POSTGRES_URL or IN_CI else ["sqlite"]


def _migrate(url: str) -> None:
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()


def migrated_sqlite(path: Path) -> str:
    """Return the URL of a migrated, empty SQLite file at ``path`` (a copy of one migrated per process)."""
    global _SQLITE_TEMPLATE
    if _SQLITE_TEMPLATE is None:
        template = Path(tempfile.mkdtemp(prefix="motcua-template-")) / "template.db"
        _migrate(f"sqlite:///{template}")
        _SQLITE_TEMPLATE = template
    shutil.copyfile(_SQLITE_TEMPLATE, path)
    return f"sqlite:///{path}"


_SQLITE_TEMPLATE: Path | None = None


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a schema of its own in the test PostgreSQL."""
    if request.param == "sqlite":
        yield migrated_sqlite(tmp_path / "motcua-test.db")
        return
    yield from _postgres_schema()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A migrated, empty schema in the test PostgreSQL, for tests that only mean something there.

    Skipped without ``MOTCUA_TEST_POSTGRES_URL`` outside CI; under CI its absence fails the run.
    """
    if not POSTGRES_URL and not IN_CI:
        pytest.skip("MOTCUA_TEST_POSTGRES_URL is not set")
    yield from _postgres_schema()


def _postgres_schema() -> Iterator[str]:
    """Lend a migrated, empty schema of the test PostgreSQL for one test.

    Migrating a schema costs about a second on PostgreSQL, so each test process keeps the schemas it made and
    empties them between tests (a DELETE of every table and a reset of the sequences, ~20 ms).  A schema is
    only lent again when it still has exactly the migrated tables at the head revision and emptying it took
    no lock another connection still held; otherwise it is dropped and the next test gets a new one.
    """
    assert POSTGRES_URL, "MOTCUA_TEST_POSTGRES_URL is required"
    admin = _postgres_admin()
    sep = "&" if "?" in POSTGRES_URL else "?"
    if _FREE_SCHEMAS:
        schema = _FREE_SCHEMAS.pop()
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        _migrate(f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}")
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    if _empty_schema(admin, schema):
        _FREE_SCHEMAS.append(schema)
    else:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


_FREE_SCHEMAS: list[str] = []
_ADMIN: list[Any] = []


def _postgres_admin() -> Any:
    """The test process's autocommit engine on the test PostgreSQL (fails or skips when unreachable)."""
    if not _ADMIN:
        admin = create_engine(POSTGRES_URL or "", isolation_level="AUTOCOMMIT", pool_size=1)
        try:
            with admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            if IN_CI:
                pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        _ADMIN.append(admin)
    return _ADMIN[0]


def _empty_schema(admin: Any, schema: str) -> bool:
    """Empty every table of a lent schema; return False when it must be dropped instead."""
    from motcua.schema import full_metadata

    tables = full_metadata().sorted_tables
    try:
        with admin.connect() as conn, conn.begin():
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            found = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"), {"schema": schema}
            ).scalars()
            if set(found) != {table.name for table in tables} | {"alembic_version"}:
                return False
            revision = conn.execute(text(f'SELECT version_num FROM "{schema}".alembic_version')).scalars()
            if list(revision) != [_head_revision()]:
                return False
            conn.execute(text("; ".join(f'DELETE FROM "{schema}"."{t.name}"' for t in reversed(tables))))
            conn.execute(
                text(
                    "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relkind = 'S'"
                ),
                {"schema": schema},
            )
    except Exception:  # a lock still held by a connection the test left open, a changed schema...
        return False
    return True


@functools.cache
def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from motcua.schema import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the schemas this test process kept for reuse."""
    if _ADMIN:
        with _ADMIN[0].connect() as conn:
            for schema in _FREE_SCHEMAS:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        _ADMIN[0].dispose()


@pytest.fixture
def bpmn_dir() -> Path:
    """The folder of BPMN fixtures."""
    return DATA / "bpmn"


# -- engines over the test database -------------------------------------------------------------
class Ticks:
    """A monotonic clock (``time.monotonic``'s stand-in) that the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


class Calls:
    """Records handler calls and decides their outcome."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any], ServiceContext]] = []
        self.plan: list[Exception | None] = []

    def handler(self, name: str) -> Callable[[dict[str, Any], ServiceContext], dict[str, Any]]:
        def handle(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
            self.seen.append((name, params, context))
            outcome = self.plan.pop(0) if self.plan else None
            if outcome is not None:
                raise outcome
            return {"ok": True, "attempt": context.attempt, "key": context.idempotency_key}

        return handle


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def registry(calls: Calls) -> HandlerRegistry:
    registry = default_registry()
    registry.register("test.remote", calls.handler("test.remote"))
    return registry


@pytest.fixture
def make_engine(db_url: str, clock: FakeClock, registry: HandlerRegistry) -> Iterator[Callable[..., Engine]]:
    """Build engines on the test database; each call is a fresh process as far as memory goes."""
    made: list[Engine] = []

    def make(**overrides: Any) -> Engine:
        options: dict[str, Any] = {
            "dispatcher": registry.dispatch,
            "known_operators": list(registry),
            "clock": clock,
            "retry_policy": RetryPolicy(retries=3, backoff_base_seconds=30, backoff_max_seconds=600),
            "script_time_limit": 1.0,
        }
        options.update(overrides)
        engine = Engine(Store(create_db_engine(db_url)), **options)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.store.engine.dispose()


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()
