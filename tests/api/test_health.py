"""The HTTP edge: liveness with database reachability, and problem documents for errors."""

from __future__ import annotations

import pytest

from api import create_app
from engine.facade import Engine
from engine.store import Store, create_db_engine
from handlers import default_registry


@pytest.fixture
def client(db_url):
    registry = default_registry()
    engine = Engine(Store(create_db_engine(db_url)), dispatcher=registry.dispatch)
    yield create_app(engine=engine, TESTING=True).test_client()
    engine.store.engine.dispose()


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_is_one_statement(client, monkeypatch):
    """The liveness probe costs the database one statement, on PostgreSQL without a transaction around it
    (it sent BEGIN, SELECT 1 and ROLLBACK, three round trips)."""
    import psycopg

    assert client.get("/healthz").status_code == 200  # the pool's first connection says hello first
    sent: list[str] = []
    original = psycopg.Cursor.execute

    def execute(self, query, *args, **kwargs):
        sent.append(str(query))
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    store = client.application.extensions["motcua.engine"].store
    assert client.get("/healthz").status_code == 200
    assert sent == (["SELECT 1"] if store.postgres else [])


def test_unknown_path_is_a_problem_document(client):
    response = client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["title"] == "Not Found"


def test_unreachable_database_is_unhealthy(tmp_path):
    registry = default_registry()
    engine = Engine(
        Store(create_db_engine(f"sqlite:///{tmp_path}/missing/dir/x.db")), dispatcher=registry.dispatch
    )
    response = create_app(engine=engine, TESTING=True).test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["status"] == "unhealthy"
