"""An event is written to the outbox once for each active webhook subscribed to it, in the step's own
transaction (one queued ``INSERT ... SELECT`` on PostgreSQL), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dossiers import webhooks
from dossiers.tables import webhook_deliveries
from engine.store import Store, create_db_engine

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _deliveries(store: Store) -> list[tuple[int, str]]:
    d = webhook_deliveries.c
    with store.unit_of_work(write=False) as uow:
        rows = uow.conn.execute(select(d.webhook_id, d.event).order_by(d.webhook_id, d.event)).all()
    return [(int(row.webhook_id), row.event) for row in rows]


def test_only_the_subscribed_active_webhooks_get_an_event(db_url: str) -> None:
    store = Store(create_db_engine(db_url))

    def register(events: list[str]) -> int:
        url = "https://example.vn/hook"
        return int(webhooks.create_webhook(store, owner="tich-hop", url=url, events=events, now=NOW)["id"])

    everything = register(["*"])
    status = register([webhooks.STATUS_CHANGED])
    late = register([webhooks.DUE_SOON, webhooks.OVERDUE])
    gone = register([webhooks.STATUS_CHANGED, webhooks.RESULT_READY])
    webhooks.delete_webhook(store, gone, None, NOW)

    with store.unit_of_work() as uow:
        webhooks.enqueue(uow.conn, webhooks.STATUS_CHANGED, {"code": "X"}, NOW, dossier_code=None)
        webhooks.enqueue(uow.conn, webhooks.OVERDUE, {"code": "X"}, NOW, dossier_code=None)
        webhooks.enqueue(uow.conn, webhooks.RESULT_READY, {"code": "X"}, NOW, dossier_code=None)

    assert _deliveries(store) == sorted(
        [
            (everything, webhooks.STATUS_CHANGED),
            (everything, webhooks.OVERDUE),
            (everything, webhooks.RESULT_READY),
            (status, webhooks.STATUS_CHANGED),
            (late, webhooks.OVERDUE),
        ]
    )
    store.engine.dispose()


def test_an_event_of_a_step_that_fails_is_not_written(db_url: str) -> None:
    store = Store(create_db_engine(db_url))
    webhooks.create_webhook(store, owner="tich-hop", url="https://example.vn/h", events=["*"], now=NOW)
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        webhooks.enqueue(uow.conn, webhooks.STATUS_CHANGED, {"code": "X"}, NOW, dossier_code=None)
        raise RuntimeError("the step fails after the event was queued")
    assert _deliveries(store) == []
    store.engine.dispose()
