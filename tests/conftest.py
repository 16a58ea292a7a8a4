"""Shared fixtures: a real SQLite file and, when configured, the real PostgreSQL, each freshly migrated.

Database tests take the ``db_url`` fixture and run once per backend.  ``MOTCUA_TEST_POSTGRES_URL`` turns the
PostgreSQL run on; under CI (``CI=true``) a missing or unreachable PostgreSQL fails the run instead of
skipping it.  Each PostgreSQL test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine.store import create_db_engine
from motcua.schema import upgrade

DATA = Path(__file__).resolve().parent / "data"
POSTGRES_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not POSTGRES_URL:
        raise pytest.UsageError("CI=true but MOTCUA_TEST_POSTGRES_URL is not set: PostgreSQL tests must run")


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if POSTGRES_URL or IN_CI else ["sqlite"]


def _migrate(url: str) -> None:
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a fresh schema in the test PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'motcua-test.db'}"
        _migrate(url)
        yield url
        return
    assert POSTGRES_URL, "MOTCUA_TEST_POSTGRES_URL is required"
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    _migrate(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def bpmn_dir() -> Path:
    """The folder of BPMN fixtures."""
    return DATA / "bpmn"
