"""Webhooks: integrators subscribe to dossier events and receive them as signed HTTP POSTs, outbox-style.

An event becomes delivery rows (one per active webhook subscribed to it) written by ``enqueue`` inside the
transaction that caused it: ``DossierTracker`` calls ``status_changed`` in the engine's unit of work, so an
event exists if and only if the change committed.  ``deliver_due`` sends the rows later, outside any
transaction, at least once; a receiver de-duplicates on the delivery id.

What a receiver gets::

    POST <url>
    Content-Type: application/json
    X-Motcua-Event: dossier.status_changed
    X-Motcua-Delivery: 42
    X-Motcua-Timestamp: 1772416800
    X-Motcua-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the webhook's secret>

    {"id": 42, "event": "dossier.status_changed", "created_at": "2026-03-02T02:00:00+00:00",
     "data": {"code": "...", "procedure_code": "...", "status": {"code": 2, "name": "..."},
              "previous_status": {"code": 1, "name": "..."}, "at": "2026-03-02T02:00:00+00:00"}}

``dossier.due_soon`` and ``dossier.overdue`` carry the code, procedure_code, status, due_at and at (and
``working_hours_left`` for due_soon); each is sent once per due date (see ``dossiers/deadlines.py``).
``dossier.result_ready`` carries the code, procedure_code, the result document's sha256, the
delivery_method and at; it is sent once, when the approval stores the result.

A 2xx answer settles the delivery.  Any other answer, a network error or no answer within 5 s is retried
30 s later, then 1, 2, 4 ... minutes later (capped at 1 h); after 8 attempts the delivery is given up.
Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from engine.errors import NotFoundError, ValidationError
from engine.hot_sql import HotSQL
from engine.runtime import Clock
from engine.store import Store
from handlers import http

from .status import describe
from .tables import webhook_deliveries, webhooks

STATUS_CHANGED = "dossier.status_changed"
DUE_SOON = "dossier.due_soon"  # about to be late: the agency owes an apology letter with a new date
OVERDUE = "dossier.overdue"  # past its due date (dossiers/deadlines.py)
RESULT_READY = "dossier.result_ready"  # the approval stored the result document (dossiers/delivery.py)
EVENTS = (STATUS_CHANGED, DUE_SOON, OVERDUE, RESULT_READY)
ALL_EVENTS = "*"
TIMEOUT_SECONDS = 5.0
LEASE = timedelta(seconds=60)  # how long a claimed delivery is hidden from other workers while it is sent
BATCH = 10  # deliveries claimed per transaction: each may take TIMEOUT_SECONDS, all well within LEASE
BACKOFF_SECONDS, BACKOFF_MAX_SECONDS, MAX_ATTEMPTS = 30, 3600, 8

# (url, body, headers, timeout in seconds) -> the HTTP status; raises on network errors and timeouts.
HttpPost = Callable[[str, bytes, Mapping[str, str], float], int]


def signature(secret: str, timestamp: str | int, body: bytes | str) -> str:
    """Return the ``X-Motcua-Signature`` value of a delivery: ``sha256=`` and the hex HMAC-SHA256 of
    ``"<timestamp>.<body>"`` under the webhook's secret.

    To verify a delivery, a receiver recomputes it from the ``X-Motcua-Timestamp`` header and the raw request
    body (the bytes as received, before any JSON parsing), compares in constant time, rejects a timestamp
    more than a few minutes from its own clock (replays), and de-duplicates on ``X-Motcua-Delivery``::

        expected = signature(secret, request.headers["X-Motcua-Timestamp"], request.get_data())
        if not hmac.compare_digest(expected, request.headers["X-Motcua-Signature"]):
            abort(401)
        if abs(time.time() - int(request.headers["X-Motcua-Timestamp"])) > 300:
            abort(401)

    Args:
        secret: the secret shown once when the webhook was registered.
        timestamp: the Unix time in seconds, as sent in ``X-Motcua-Timestamp``.
        body: the request body (str is encoded as UTF-8).
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + raw, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


# -- subscriptions ----------------------------------------------------------------------------------
def _check(url: str, events: Collection[str]) -> None:
    problems: dict[str, list[str]] = {}
    if not url.lower().startswith(("http://", "https://")) or len(url) > 2000:
        problems["url"] = ["an http(s) URL of at most 2000 characters is required"]
    if not events or set(events) - {*EVENTS, ALL_EVENTS}:
        problems["events"] = [f"a non-empty list of: {', '.join((*EVENTS, ALL_EVENTS))}"]
    if problems:
        raise ValidationError("The webhook is not valid", problems)


def _public(row: Any) -> dict[str, Any]:
    out = {k: v for k, v in row._mapping.items() if k != "secret"}
    out["events"] = out["events"].split(",")
    return out


def create_webhook(
    store: Store, *, owner: str, url: str, events: Collection[str], now: datetime
) -> dict[str, Any]:
    """Register a webhook of ``owner`` and return it with its secret (the only time the secret is returned).

    Raises:
        ValidationError: the URL is not http(s) or an event is unknown.
    """
    _check(url, events)
    names = ALL_EVENTS if ALL_EVENTS in events else ",".join(sorted(set(events)))
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    values = {
        "owner": owner,
        "url": url,
        "secret": secret,
        "events": names,
        "active": True,
        "created_at": now,
    }
    with store.unit_of_work() as uow:
        webhook_id = uow.conn.execute(insert(webhooks).values(**values).returning(webhooks.c.id)).scalar_one()
        row = uow.conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).one()
    return {**_public(row), "secret": secret}


def _owned(conn: Connection, webhook_id: int, owner: str | None) -> Any:
    w = webhooks.c
    query = select(webhooks).where(w.id == webhook_id, w.active.is_(True))
    if owner is not None:
        query = query.where(w.owner == owner)
    row = conn.execute(query).first() if 0 < webhook_id < 2**63 else None  # ids are BIGINTs
    if row is None:
        raise NotFoundError(f"No webhook {webhook_id}", webhook_id=webhook_id)
    return row


def list_webhooks(store: Store, owner: str | None) -> list[dict[str, Any]]:
    """Return the webhooks of ``owner`` (everyone's when None), oldest first, without their secrets."""
    query = select(webhooks).where(webhooks.c.active.is_(True)).order_by(webhooks.c.id)
    if owner is not None:
        query = query.where(webhooks.c.owner == owner)
    with store.unit_of_work(write=False) as uow:
        return [_public(row) for row in uow.conn.execute(query)]


def get_webhook(store: Store, webhook_id: int, owner: str | None) -> dict[str, Any]:
    """Return one webhook of ``owner`` (anyone's when None) without its secret.

    Raises:
        NotFoundError: there is no such webhook, or it belongs to someone else.
    """
    with store.unit_of_work(write=False) as uow:
        return _public(_owned(uow.conn, webhook_id, owner))


def delete_webhook(store: Store, webhook_id: int, owner: str | None, now: datetime) -> None:
    """Delete a webhook of ``owner`` (anyone's when None): it gets no more events, its secret is forgotten
    and its pending deliveries are given up.

    The row stays, inactive and unlisted, so that its deliveries keep their history and an event enqueued
    concurrently never points at a missing webhook.

    Raises:
        NotFoundError: there is no such webhook, or it belongs to someone else.
    """
    d = webhook_deliveries.c
    with store.unit_of_work() as uow:
        _owned(uow.conn, webhook_id, owner)
        # Waits for steps that are enqueueing to this webhook (they hold it FOR SHARE), so the next
        # statement sees their deliveries.
        uow.conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(active=False, secret=""))
        pending = update(webhook_deliveries).where(d.webhook_id == webhook_id, d.due_at.is_not(None))
        uow.conn.execute(pending.values(due_at=None, gave_up_at=now, last_error="webhook deleted"))


def deliveries_of(store: Store, webhook_id: int, owner: str | None, limit: int = 50) -> list[dict[str, Any]]:
    """Return the latest ``limit`` deliveries of a webhook, newest first, each with its ``state``
    (pending, delivered or gave_up) and its decoded ``payload``.

    Raises:
        NotFoundError: there is no such webhook, or it belongs to someone else.
    """
    d = webhook_deliveries.c
    query = select(webhook_deliveries).where(d.webhook_id == webhook_id).order_by(d.id.desc()).limit(limit)
    with store.unit_of_work(write=False) as uow:
        _owned(uow.conn, webhook_id, owner)
        rows = [dict(row._mapping) for row in uow.conn.execute(query)]
    for row in rows:
        row["payload"] = json.loads(row["payload"])
        row["state"] = "delivered" if row["delivered_at"] else "gave_up" if row["gave_up_at"] else "pending"
    return rows


# -- the outbox -------------------------------------------------------------------------------------
# One statement writes the deliveries of an event, queued with the rest of the step (no round trip): the
# webhooks subscribed to it are chosen in SQL.  FOR SHARE (PostgreSQL): a webhook cannot be deactivated
# between choosing it and committing its delivery (``delete_webhook`` waits for the step).
_ENQUEUE = (
    "INSERT INTO webhook_deliveries (webhook_id, event, dossier_code, payload, created_at, due_at, attempts) "
    "SELECT id, ?, ?, ?, ?, ?, 0 FROM webhooks WHERE active AND (events = '*' OR {subscribed})"
)
_ENQUEUE_POSTGRESQL = _ENQUEUE.format(subscribed="position(? in ',' || events || ',') > 0") + " FOR SHARE"
_ENQUEUE_SQLITE = _ENQUEUE.format(subscribed="instr(',' || events || ',', ?) > 0")


def enqueue(
    conn: Connection, event: str, payload: Mapping[str, Any], now: datetime, *, dossier_code: str | None
) -> None:
    """Write one delivery of ``event`` per active webhook subscribed to it, in the caller's transaction."""
    hot = HotSQL(conn)
    body = json.dumps(payload, ensure_ascii=False, default=str)
    at = hot.timestamp(now)
    sql = _ENQUEUE_SQLITE if conn.dialect.name == "sqlite" else _ENQUEUE_POSTGRESQL
    hot.run(sql, (event, dossier_code, body, at, at, f",{event},"))


def status_changed(conn: Connection, dossier: Mapping[str, Any], new: int, now: datetime) -> None:
    """Enqueue ``dossier.status_changed`` for a dossier moving from its stored status to ``new``."""
    payload = {
        "code": dossier["code"],
        "procedure_code": dossier["procedure_code"],
        "status": describe(new),
        "previous_status": describe(dossier["status"]),
        "at": now.astimezone(UTC).isoformat(),
    }
    enqueue(conn, STATUS_CHANGED, payload, now, dossier_code=dossier["code"])


# -- delivery ---------------------------------------------------------------------------------------
def deliver_due(
    store: Store, clock: Clock, *, http_post: HttpPost | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Send up to ``limit`` due deliveries and record how each went.

    Deliveries are claimed in short transactions (locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, under
    the write lock on SQLite) that hide them for ``LEASE`` from other workers; the HTTP requests run outside
    any transaction; each result is recorded in a transaction of its own.

    Args:
        store: the database.
        clock: what "now" is (due times, back-off, the signed timestamp).
        http_post: how to POST (default: ``urllib_post``); a scheduler may pass one using a session.
        limit: at most this many deliveries are attempted.

    Returns:
        One dict per attempted delivery: id, webhook_id, event, outcome (delivered, retry, gave_up, or
        deferred when its lease ran out before it could be sent), status, error and attempts.
    """
    post = http_post or urllib_post
    results: list[dict[str, Any]] = []
    while len(results) < limit:
        leased_until = clock.now() + LEASE
        batch = _claim(store, clock.now(), leased_until, min(BATCH, limit - len(results)))
        if not batch:
            break
        results.extend(_attempt(store, clock, row, post, leased_until) for row in batch)
    return results


def _claim(store: Store, now: datetime, leased_until: datetime, size: int) -> list[dict[str, Any]]:
    d, w = webhook_deliveries.c, webhooks.c
    query = (
        select(d.id, d.webhook_id, d.event, d.payload, d.created_at, d.attempts, w.url, w.secret)
        .join_from(webhook_deliveries, webhooks, d.webhook_id == w.id)
        .where(d.due_at <= now, w.active.is_(True))
        .order_by(d.due_at, d.id)
        .limit(size)
        .with_for_update(of=webhook_deliveries, skip_locked=True)  # nothing on SQLite
    )
    with store.unit_of_work() as uow:
        rows = [dict(row._mapping) for row in uow.conn.execute(query)]
        if rows:
            ids = [row["id"] for row in rows]
            uow.conn.execute(update(webhook_deliveries).where(d.id.in_(ids)).values(due_at=leased_until))
    return rows


def _attempt(
    store: Store, clock: Clock, row: Mapping[str, Any], post: HttpPost, leased_until: datetime
) -> dict[str, Any]:
    result = {"id": row["id"], "webhook_id": row["webhook_id"], "event": row["event"]}
    now = clock.now()
    if now + timedelta(seconds=TIMEOUT_SECONDS) > leased_until:
        # Another worker may take it once the lease ends; sending now could deliver it twice.
        return {**result, "outcome": "deferred", "status": None, "error": None, "attempts": row["attempts"]}
    envelope = {"id": row["id"], "event": row["event"], "created_at": row["created_at"].isoformat()}
    body = json.dumps({**envelope, "data": json.loads(row["payload"])}, ensure_ascii=False).encode("utf-8")
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "motcua-webhooks/1",
        "X-Motcua-Event": row["event"],
        "X-Motcua-Delivery": str(row["id"]),
        "X-Motcua-Timestamp": timestamp,
        "X-Motcua-Signature": signature(row["secret"], timestamp, body),
    }
    status: int | None = None
    error: str | None = None
    try:
        status = post(row["url"], body, headers, TIMEOUT_SECONDS)
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except Exception as exc:  # any failure of the receiver or the network is retried
        error = f"{type(exc).__name__}: {exc}"[:500]
    outcome = _record(store, row, clock.now(), status, error)
    return {**result, "outcome": outcome, "status": status, "error": error, "attempts": row["attempts"] + 1}


def backoff(attempts: int) -> timedelta:
    """Return how long to wait after the ``attempts``-th failed attempt: 30 s doubling, at most 1 h."""
    return timedelta(seconds=min(BACKOFF_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS))


def _record(
    store: Store, row: Mapping[str, Any], now: datetime, status: int | None, error: str | None
) -> str:
    attempts = row["attempts"] + 1
    values: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error}
    if error is None:
        outcome, values["delivered_at"], values["due_at"] = "delivered", now, None
    elif attempts >= MAX_ATTEMPTS:
        outcome, values["gave_up_at"], values["due_at"] = "gave_up", now, None
    else:
        outcome, values["due_at"] = "retry", now + backoff(attempts)
    d = webhook_deliveries.c
    unsettled = (
        d.id == row["id"],
        d.delivered_at.is_(None),
        d.gave_up_at.is_(None),
    )  # e.g. deleted meanwhile
    with store.unit_of_work() as uow:
        uow.conn.execute(update(webhook_deliveries).where(*unsettled).values(**values))
    return outcome


def urllib_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body`` to an http(s) ``url`` with the standard library; return the HTTP status.

    Raises:
        ValueError: the URL is not http(s).
        OSError: the network failed or the receiver did not answer within ``timeout`` seconds.
    """
    status, _ = http.send("POST", url, body=body, headers=headers, timeout=timeout, max_bytes=0)
    return status
