"""Database access for the engine: every query lives here, behind a small unit-of-work API.

One ``UnitOfWork`` is one transaction on one connection.  On SQLite writers take the database lock up
front (``BEGIN IMMEDIATE``) so that two writers serialize instead of failing half-way; on PostgreSQL the
optimistic ``row_version`` check on the instance row decides which of two writers wins.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import errors as psycopg_errors
from sqlalchemy import (
    Engine,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from . import tables as t
from .errors import ConflictError, StaleVersionError
from .fast_sql import FastStatement
from .hot_sql import HotSQL
from .pipeline_writes import forget_prepared, queue_command, send_queued
from .wakeup_sql import WakeUpQueries

# A result row (SQLAlchemy's typed Row generics add nothing for these dynamic column sets).
AnyRow = Any


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """Create a SQLAlchemy engine tuned for this project's use of SQLite or PostgreSQL."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            pool_size=10,
            max_overflow=20,
            pool_use_lifo=True,  # as on PostgreSQL, below
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        _tune_sqlite(engine)
        return engine
    # No pre-ping (a round trip per checkout, 4% of a unit of work): after a database restart the first
    # unit on each dead pooled connection fails (503, Retry-After), and SQLAlchemy then replaces the
    # pool's connections.  Connections are recycled after 30 minutes, before idle-connection limits.
    # Last in, first out: a unit takes the connection used last, so a process that once opened more
    # connections than it now needs (its jobs all ran at the start) keeps working on a few hot server
    # processes, with their prepared statements and caches, instead of cycling through every one of them
    # (which cost PostgreSQL ~0.2 ms of CPU per API request; docs/PERFORMANCE.md, section 3).
    engine = create_engine(
        url, echo=echo, pool_size=10, max_overflow=20, pool_recycle=1800, pool_use_lifo=True
    )
    _tune_postgresql(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":  # asked for no transaction (e.g. VACUUM)
            return
        immediate = options.get("motcua_write", False)
        # Straight to the driver: this runs once per unit of work, SQLAlchemy's execute costs ~70 µs.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")  # type: ignore[union-attr]


def _tune_postgresql(engine: Engine) -> None:
    """Make each unit of work cost as few round trips as the work needs.

    psycopg would send ``BEGIN`` in a round trip of its own before the first statement of a transaction.
    Connections are in autocommit mode instead, and ``Store.unit_of_work`` sends its own ``BEGIN``: a writing
    unit queues it in the unit's pipeline (it travels with the first query), a reading unit sends none (under
    READ COMMITTED a transaction of reads sees no more than its statements each see alone).  Other users of
    the engine (``engine.begin()``, migrations) get a ``BEGIN`` from the ``begin`` event, as before.

    Inside a unit's pipeline a statement run through SQLAlchemy is followed by a sync, so that its rows and
    row count are there when SQLAlchemy reads them; the driver's statements (``HotSQL``, ``FastStatement``)
    are only queued, and go to the server with the next read, at the latest with the unit's ``COMMIT``.
    """

    event.listen(engine, "connect", _autocommit)
    event.listen(engine, "checkout", _autocommit_again)
    event.listen(engine, "begin", _begin_outside_units)
    event.listen(engine, "do_execute", _do_execute)
    event.listen(engine, "do_execute_no_params", _do_execute_no_params)
    event.listen(engine, "do_executemany", _do_executemany)


def _autocommit(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.autocommit = True


def _autocommit_again(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    if not dbapi_conn.autocommit:  # reset by SQLAlchemy after an isolation_level execution option
        dbapi_conn.autocommit = True


def _begin_outside_units(conn: Connection) -> None:
    options = conn.get_execution_options()
    # A unit of work sends its own BEGIN (or none); AUTOCOMMIT asks for none at all (VACUUM, CREATE DATABASE).
    if options.get("motcua_unit") is None and options.get("isolation_level") != "AUTOCOMMIT":
        conn.connection.driver_connection.execute("BEGIN")  # type: ignore[union-attr]


def _synced(execute: Callable[[], None], cursor: Any, _context: Any) -> bool:
    raw = cursor.connection
    if not raw.pgconn.pipeline_status:
        execute()
    else:
        with raw.pipeline():  # a nested pipeline syncs when it ends
            execute()
    return True  # the statement ran: SQLAlchemy does not run it again


def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    return _synced(lambda: cursor.execute(statement, parameters), cursor, context)


def _do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
    return _synced(lambda: cursor.execute(statement), cursor, context)


def _do_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    return _synced(lambda: cursor.executemany(statement, parameters), cursor, context)


# Statements of the hot path, built once: building Core statements costs more than running them on SQLite.
_HEAD_COLUMNS = [c for c in t.instances.c if c.name != "state"]
# The reads run on the driver's cursor (``FastStatement``): SQLAlchemy's execution layer costs more than
# PostgreSQL needs to run them, and inside a unit's pipeline they then need no sync point.
_SELECT_HEAD = FastStatement(select(*_HEAD_COLUMNS).where(t.instances.c.id == bindparam("instance_id")))
_SELECT_ROW = FastStatement(select(t.instances).where(t.instances.c.id == bindparam("instance_id")))
_SELECT_STATE = FastStatement(
    select(t.instances.c.state, t.instances.c.state_format, t.instances.c.row_version).where(
        t.instances.c.id == bindparam("instance_id")
    )
)
_SELECT_READY = FastStatement(select(t.ready_tasks).where(t.ready_tasks.c.id == bindparam("task_id")))
_LATEST_DEFINITION = FastStatement(  # every start runs it
    select(*[c for c in t.definitions.c if c.name not in ("xml", "spec_json")])
    .where(t.definitions.c.key == bindparam("key"))
    .order_by(t.definitions.c.version.desc())
    .limit(1)
)
_SUBSCRIPTIONS = (
    select(t.message_subscriptions, t.instances.c.row_version)
    .join(t.instances, t.instances.c.id == t.message_subscriptions.c.instance_id)
    .where(t.message_subscriptions.c.message_name == bindparam("message_name"))
)
_FIND_SUBSCRIPTIONS = FastStatement(_SUBSCRIPTIONS)
_FIND_SUBSCRIPTIONS_BY_KEY = FastStatement(
    _SUBSCRIPTIONS.join(
        t.subscription_keys,
        and_(
            t.subscription_keys.c.subscription_id == t.message_subscriptions.c.id,
            t.subscription_keys.c.name == bindparam("key"),
            t.subscription_keys.c.value == bindparam("value"),
        ),
    )
)


@dataclass(frozen=True)
class Projection:
    """What an instance currently exposes to queries, computed from its workflow."""

    ready_tasks: dict[str, dict[str, Any]]
    timers: dict[str, dict[str, Any]]
    subscriptions: dict[tuple[str, str], dict[str, Any]]
    status: str = "running"
    # Where the process stands: the elements it waits at (or the end events it reached), with their
    # lane and BPMN properties.  Not stored; read by instance listeners (e.g. to derive a dossier status).
    position: tuple[dict[str, Any], ...] = ()


EMPTY_PROJECTION = Projection({}, {}, {})


class Store:
    """Owns the database engine; hands out units of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def lend_connection(self) -> Iterator[None]:
        """Let the units of work of the block (in this thread) share one pooled connection.

        The connection is checked out at the first unit that needs it, not before; a unit opened
        while another is still open takes a connection of its own.  The web app lends one per request, which
        saves a checkout for each unit after the first (a task completion runs three).
        """
        lease = _Lease(self)
        token = _LEASE.set(lease)
        try:
            yield
        finally:
            _LEASE.reset(token)
            lease.close()

    @contextmanager
    def unit_of_work(self, *, write: bool = True, one_write: bool = False) -> Iterator[UnitOfWork]:
        """Open one transaction; commit when the block ends normally, roll back otherwise.

        On PostgreSQL a writing unit runs in a pipeline: its ``BEGIN`` goes with its first query, and the
        writes it queues (``HotSQL``) go with its ``COMMIT``.  A reading unit runs in autocommit mode.

        Args:
            write: the unit writes (on SQLite it then takes the write lock up front).
            one_write: the unit writes with a single statement whose result it reads at once (a claim): that
                statement is atomic on its own, so on PostgreSQL it runs in autocommit mode, one round trip
                with no ``BEGIN`` and no ``COMMIT``; on SQLite this is an ordinary writing unit.

        Raises:
            ConflictError: the database refused the transaction because of a concurrent writer.
        """
        lease = _LEASE.get()
        lent = lease is not None and lease.store is self and not lease.busy
        try:
            with lease.borrow() if lent else self.engine.connect() as conn:  # type: ignore[union-attr]
                conn.execution_options(motcua_write=write)
                try:
                    if self.postgres:
                        with _postgres_unit(conn, write and not one_write) as uow:
                            yield uow
                    else:
                        with conn.begin():
                            yield UnitOfWork(conn)
                except psycopg_errors.Error as exc:
                    if isinstance(exc, psycopg_errors.InvalidSqlStatementName):
                        forget_prepared(conn.connection.driver_connection)  # prepare them again
                    _drop_if_gone(conn, exc)
                    raise
        except (psycopg_errors.Error, sqlite3.Error) as exc:  # from HotSQL or a pipeline's last sync
            base = psycopg_errors.Error if isinstance(exc, psycopg_errors.Error) else sqlite3.Error
            wrapped = DBAPIError.instance(None, None, exc, base)  # as SQLAlchemy raises the others
            conflict = _conflict(exc) if isinstance(wrapped, OperationalError) else None
            raise conflict or wrapped from exc
        except OperationalError as exc:
            conflict = _conflict(exc.orig)
            if conflict is not None:
                raise conflict from exc
            raise


def _drop_if_gone(conn: Connection, error: psycopg_errors.Error) -> None:
    """Do what SQLAlchemy does when one of its own statements finds the database gone, for an error raised
    by a driver statement (``HotSQL``, ``FastStatement``, a pipeline's sync): discard this connection, and
    have the pool replace every connection made before it at their next checkout (after a restart of
    PostgreSQL they are all dead), so that a restart costs one failed unit, not one per pooled connection."""
    raw = conn.connection.dbapi_connection
    if conn.invalidated or not conn.dialect.is_disconnect(error, raw, None):  # type: ignore[arg-type]
        return
    conn.engine.pool._invalidate(conn.connection, error, _checkin=False)
    conn.invalidate(error)


# The message of ``motcua_written()`` (migration 0014) when an instance row was not at the expected version.
STALE_INSTANCE = "was changed by another writer"


# The message of ``motcua_claim_free()`` (migration 0014) when someone else holds a task being completed.
_CLAIMED = re.compile(r"motcua: task (\S+) is claimed by (.+)")


def _conflict(error: BaseException | None) -> ConflictError | None:
    """Return the ConflictError a database error stands for (a concurrent writer won), or None."""
    text = str(error)
    claimed = _CLAIMED.search(text)
    if claimed is not None:
        holder = claimed.group(2).splitlines()[0]
        return ConflictError(f"Task {claimed.group(1)} is claimed by {holder}", claimed_by=holder)
    if STALE_INSTANCE in text:
        return StaleVersionError("The instance was changed by another writer; reload it and try again")
    lowered = text.lower()
    if "locked" in lowered or "could not serialize" in lowered or "deadlock" in lowered:
        return ConflictError("The instance was changed by another writer; try again")
    return None


@contextmanager
def _postgres_unit(conn: Connection, write: bool) -> Iterator[UnitOfWork]:
    if not write:
        # No BEGIN is sent: each read runs on its own (autocommit).  SQLAlchemy's own transaction bookkeeping
        # starts only if a Core statement runs (autobegin); the driver's statements (``FastStatement``, the
        # bearer token and a task's context on every request) need none.
        conn.execution_options(motcua_unit="read")
        try:
            yield UnitOfWork(conn)
        except BaseException:
            if conn.in_transaction():
                conn.rollback()
            raise
        if conn.in_transaction():
            conn.commit()
        return
    conn.execution_options(motcua_unit="write")
    raw: Any = conn.connection.driver_connection
    with conn.begin(), raw.pipeline():
        # Both queued straight to libpq (a cursor's execute costs more than the rest of a small unit's
        # writes): BEGIN reaches the server with the unit's first query, COMMIT behind the unit's writes,
        # and the pipeline's sync sends them all.
        queue_command(raw, b"BEGIN")
        yield UnitOfWork(conn)
        queue_command(raw, b"COMMIT")
    # SQLAlchemy's commit then finds the transaction closed and sends nothing; after an error its
    # rollback sends the ROLLBACK.


class _Lease:
    """One pooled connection lent to the units of work of a block (``Store.lend_connection``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.busy = False
        self._conn: Connection | None = None

    @contextmanager
    def borrow(self) -> Iterator[Connection]:
        self.busy = True
        try:
            if self._conn is None or self._conn.closed or self._conn.invalidated:
                self._conn = self.store.engine.connect()
            yield self._conn
        except BaseException:
            self.close()  # a failed unit may leave the connection unusable: the next one takes another
            raise
        finally:
            self.busy = False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_LEASE: ContextVar[_Lease | None] = ContextVar("motcua_lease", default=None)


class UnitOfWork(WakeUpQueries):
    """Queries and writes inside one transaction (wake-up claims: ``WakeUpQueries``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.hot = HotSQL(conn)

    # -- definitions -------------------------------------------------------------------------------
    def latest_definition(self, key: str) -> AnyRow | None:
        """Return the newest definition row of a process key (without the XML), or None."""
        return _LATEST_DEFINITION.first(self.conn, {"key": key})

    def definition(self, definition_id: int) -> AnyRow | None:
        """Return a whole definition row by id, or None."""
        return self.conn.execute(select(t.definitions).where(t.definitions.c.id == definition_id)).first()

    def definition_by_version(self, key: str, version: int) -> AnyRow | None:
        """Return a whole definition row by key and version, or None."""
        query = select(t.definitions).where(t.definitions.c.key == key, t.definitions.c.version == version)
        return self.conn.execute(query).first()

    def list_definitions(self, key: str | None = None) -> Sequence[AnyRow]:
        """Return definition rows (without XML and spec), newest version first per key."""
        cols = [c for c in t.definitions.c if c.name not in ("xml", "spec_json")]
        query = select(*cols).order_by(t.definitions.c.key, t.definitions.c.version.desc())
        if key is not None:
            query = query.where(t.definitions.c.key == key)
        return self.conn.execute(query).all()

    def insert_definition(self, values: dict[str, Any]) -> int:
        """Insert a definition version; return its id."""
        result = self.conn.execute(insert(t.definitions).values(**values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    # -- instances --------------------------------------------------------------------------------
    def instance_head(self, instance_id: str) -> AnyRow | None:
        """Return an instance row without its state blob, or None."""
        return _SELECT_HEAD.first(self.conn, {"instance_id": instance_id})

    def instance_row(self, instance_id: str) -> AnyRow | None:
        """Return an instance row with its state blob (the head and the state in one read), or None."""
        return _SELECT_ROW.first(self.conn, {"instance_id": instance_id})

    def instance_state(self, instance_id: str) -> AnyRow | None:
        """Return (state, state_format, row_version) of an instance, or None."""
        return _SELECT_STATE.first(self.conn, {"instance_id": instance_id})

    def insert_instance(self, values: dict[str, Any]) -> None:
        """Insert a new instance row."""
        self.hot.insert_instance(values)

    def write_instance(
        self,
        instance_id: str,
        expected_version: int,
        values: dict[str, Any],
        projections: tuple[Projection | None, Projection],
        audit: Sequence[dict[str, Any]],
    ) -> None:
        """Write an instance row, its projections and audit entries, if nobody else wrote it since.

        The instance row goes first, so that concurrent writers queue on its lock rather than deadlock
        on the projection rows.  On PostgreSQL all of it is queued in the unit's pipeline, and the
        version is checked in the server (``HotSQL.update_instance``); on SQLite by the row count here.

        Args:
            projections: (old, new); an old of None (state freshly loaded) rewrites every row.

        Raises:
            ConflictError: the row version moved on (another writer committed first).
        """
        old, new = projections
        cursor = self.hot.update_instance(instance_id, expected_version, values)
        if old is None:
            self.hot.clear_projection(instance_id)
            old = EMPTY_PROJECTION
        self._sync_ready(instance_id, old.ready_tasks, new.ready_tasks)
        self._sync_timers(instance_id, old.timers, new.timers)
        if audit:
            self.hot.insert_audit(audit)
        self._sync_subscriptions(instance_id, old.subscriptions, new.subscriptions)
        if cursor is not None and cursor.rowcount != 1:
            raise StaleVersionError(
                "The instance was changed by another writer; reload it and try again",
                instance_id=instance_id,
            )

    @property
    def queued(self) -> bool:
        """Whether writes are queued in a pipeline (a PostgreSQL unit of work) rather than run at once."""
        return self.hot.queued

    def send_queued(self) -> None:
        """Send the writes queued so far to the server without waiting (queued units)."""
        send_queued(self.conn.connection.driver_connection)

    def write_instance_state(self, instance_id: str, state: str) -> None:
        """Write an instance's state after ``write_instance`` wrote the rest of its row (queued units)."""
        self.hot.update_instance_state(instance_id, state)

    def start_request(self, owner: str, key: str) -> AnyRow | None:
        """Return the recorded start of an Idempotency-Key, or None."""
        r = t.start_requests.c
        return self.conn.execute(select(t.start_requests).where(r.owner == owner, r.key == key)).first()

    def insert_start_request(self, values: dict[str, Any]) -> None:
        """Record an Idempotency-Key with the instance it starts."""
        self.conn.execute(insert(t.start_requests).values(**values))

    # -- projections ------------------------------------------------------------------------------
    def ready_task_version(self, task_id: str) -> tuple[str, int, str | None] | None:
        """Return (instance id, instance row version, who claimed it) of a ready task, or None."""
        return self.hot.ready_task_version(task_id)

    def ready_task(self, task_id: str) -> AnyRow | None:
        """Return the ready-task row with this id, or None."""
        return _SELECT_READY.first(self.conn, {"task_id": task_id})

    def ready_tasks(
        self, *, instance_id: str | None = None, lane: str | None = None, limit: int = 500
    ) -> Sequence[AnyRow]:
        """Return ready user tasks, oldest first, optionally by instance and lane."""
        query = select(t.ready_tasks, t.instances.c.business_key, t.instances.c.process_key).join(
            t.instances, t.instances.c.id == t.ready_tasks.c.instance_id
        )
        if instance_id is not None:
            query = query.where(t.ready_tasks.c.instance_id == instance_id)
        if lane is not None:
            query = query.where(t.ready_tasks.c.lane == lane)
        return self.conn.execute(query.order_by(t.ready_tasks.c.created_at).limit(limit)).all()

    def claim_of(self, task_id: str) -> AnyRow | None:
        """Return the claim on a task, or None."""
        return self.conn.execute(select(t.task_claims).where(t.task_claims.c.task_id == task_id)).first()

    def take_claim(self, task_id: str, actor: str, at: datetime, *, force: bool) -> str | None:
        """Claim a ready task for ``actor`` unless someone else holds it (``force``: even then).

        Returns:
            The task's instance id, or None when nothing was claimed (the task is not ready, or is held).
        """
        return self.hot.take_claim(task_id, actor, at, force)

    def release_claim_of(self, task_id: str, actor: str) -> None:
        """Remove the claim on a task unless someone other than ``actor`` holds it.

        Raises:
            ConflictError: someone else holds it (on PostgreSQL when the unit commits: the check is queued).
        """
        self.hot.release_claim_of(task_id, actor)

    def release(self, task_id: str) -> None:
        """Remove the claim on a task, if any."""
        self.hot.delete_claim(task_id)

    def timers_of(self, instance_id: str) -> Sequence[AnyRow]:
        """Return the pending wake-ups of one instance."""
        return self.conn.execute(select(t.timers).where(t.timers.c.instance_id == instance_id)).all()

    def subscriptions_of(self, instance_id: str) -> Sequence[AnyRow]:
        """Return the message subscriptions of one instance."""
        query = select(t.message_subscriptions).where(t.message_subscriptions.c.instance_id == instance_id)
        return self.conn.execute(query).all()

    def find_subscriptions(self, message_name: str, correlation: dict[str, Any]) -> list[AnyRow]:
        """Return subscriptions to ``message_name`` whose correlation contains every given value, each with
        its instance's ``row_version`` (so that delivery finds a cached instance without another query)."""
        items = sorted(correlation.items())
        if items:  # narrowed by the index of one correlation value; the others are compared here
            name, value = items[0]
            params = {"message_name": message_name, "key": name, "value": canonical(value)}
            rows = _FIND_SUBSCRIPTIONS_BY_KEY.all(self.conn, params)
        else:
            rows = _FIND_SUBSCRIPTIONS.all(self.conn, {"message_name": message_name})
        return [row for row in rows if _contains(json.loads(row.correlation), correlation)]

    def insert_projection(self, instance_id: str, projection: Projection) -> None:
        """Write the projection rows of a new instance."""
        self._sync_ready(instance_id, {}, projection.ready_tasks)
        self._sync_timers(instance_id, {}, projection.timers)
        self._sync_subscriptions(instance_id, {}, projection.subscriptions)

    def _sync_ready(self, instance_id: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        gone = [task_id for task_id in old if task_id not in new]
        if gone:
            self.hot.delete_ready(gone)
        added = [
            dict(row, id=task_id, instance_id=instance_id)
            for task_id, row in new.items()
            if task_id not in old
        ]
        if added:
            self.hot.insert_ready(added)

    def _sync_timers(self, instance_id: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        # On the hot path (and in the PostgreSQL pipeline): a unit of work that starts or ends a timer
        # writes it here, and SQLAlchemy's per-statement cost would be most of the write.
        changed = [task_id for task_id, row in old.items() if new.get(task_id) != row]
        if changed:
            self.hot.delete_timers(changed)
        added = [
            dict(row, task_id=task_id, instance_id=instance_id)
            for task_id, row in new.items()
            if old.get(task_id) != row
        ]
        if added:
            self.hot.insert_timers(added)

    def _sync_subscriptions(self, instance_id: str, old: dict[Any, Any], new: dict[Any, Any]) -> None:
        for task_id, name in (key for key, row in old.items() if new.get(key) != row):
            self.hot.delete_subscription(task_id, name)
        for (task_id, name), row in new.items():
            if old.get((task_id, name)) == row:
                continue
            correlation = row["correlation"]
            self.hot.insert_subscription(
                instance_id,
                task_id,
                name,
                row["element_id"],
                json.dumps(correlation, sort_keys=True),
                [(key, canonical(value)) for key, value in correlation.items()],
            )

    # -- history ----------------------------------------------------------------------------------
    def add_audit(self, entries: Iterable[dict[str, Any]]) -> None:
        """Append audit entries (dicts with the audit table's columns)."""
        rows = list(entries)
        if rows:
            self.hot.insert_audit(rows)

    def task_was_completed(self, task_id: str) -> bool:
        """Return whether the audit trail records the completion of this task."""
        a = t.audit.c
        query = select(a.id).where(a.task_id == task_id, a.action == "task_completed").limit(1)
        return self.conn.execute(query).first() is not None

    def audit_of(self, instance_id: str) -> Sequence[AnyRow]:
        """Return the audit trail of one instance in order."""
        query = select(t.audit).where(t.audit.c.instance_id == instance_id).order_by(t.audit.c.id)
        return self.conn.execute(query).all()

    def add_incident(self, values: dict[str, Any]) -> None:
        """Record an incident (a task that failed for good)."""
        self.conn.execute(insert(t.incidents).values(**values))

    def open_incidents(self, instance_id: str | None = None) -> Sequence[AnyRow]:
        """Return unresolved incidents, of one instance or of all."""
        query = select(t.incidents).where(t.incidents.c.resolved_at.is_(None)).order_by(t.incidents.c.id)
        if instance_id is not None:
            query = query.where(t.incidents.c.instance_id == instance_id)
        return self.conn.execute(query).all()

    def resolve_incidents(self, instance_id: str, at: datetime, by: str) -> int:
        """Mark the open incidents of an instance resolved; return how many."""
        i = t.incidents.c
        result = self.conn.execute(
            update(t.incidents)
            .where(i.instance_id == instance_id, i.resolved_at.is_(None))
            .values(resolved_at=at, resolved_by=by)
        )
        return int(result.rowcount)

    def count(self, table_name: str) -> int:
        """Return the number of rows of a table (for tests and health reports)."""
        table = t.metadata.tables[table_name]
        return int(self.conn.execute(select(func.count()).select_from(table)).scalar_one())


def canonical(value: Any) -> str:
    """Return the canonical text of a correlation value, for equality matching in SQL."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _contains(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(key in stored and canonical(stored[key]) == canonical(value) for key, value in wanted.items())
