"""The few statements run on every unit of work, sent straight to the DB-API connection.

SQLAlchemy's execution layer costs about 70 µs per statement, fifteen times what SQLite needs to run
these statements, and a unit of work runs five of them.  Everything else goes through SQLAlchemy Core.
The statements are plain SQL that SQLite and PostgreSQL both accept; only the parameter marker and the
way timestamps are bound differ (SQLite has no time zones: UTC text in SQLAlchemy's own format).  Inside a
PostgreSQL unit of work they are queued in its pipeline (``queued``), and the two checks that cannot wait
for a result there run in the server instead (``motcua_written``, ``motcua_claim_free``: migration 0014).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from .errors import ConflictError
from .pipeline_writes import Unsupported, in_pipeline, numbered, queue_write

_READY_WITH_VERSION = (
    "SELECT r.instance_id, i.row_version, c.claimed_by FROM ready_tasks r "
    "JOIN instances i ON i.id = r.instance_id LEFT JOIN task_claims c ON c.task_id = r.id WHERE r.id = ?"
)
_UPDATE_INSTANCE = (
    "UPDATE instances SET row_version = ?, status = ?, state_format = ?, updated_at = ?, completed_at = ?, "
    "state = ? WHERE id = ? AND row_version = ?"
)
# PostgreSQL: the version and the columns known before the state is serialised, failing in the server
# unless it wrote the row (``motcua_written``, migration 0014), so that it can be queued in the unit's
# pipeline instead of being checked first; the state follows in its own statement (``Engine.save``
# serialises it while the server writes the rest).
_UPDATE_INSTANCE_HEAD_CHECKED = (
    "WITH written AS (UPDATE instances SET row_version = ?, status = ?, state_format = ?, "
    "updated_at = ?, completed_at = ? WHERE id = ? AND row_version = ? RETURNING 1) "
    "SELECT motcua_written(count(*), ?) FROM written"
)
_UPDATE_INSTANCE_STATE = "UPDATE instances SET state = ? WHERE id = ?"
_INSERT_INSTANCE = (
    "INSERT INTO instances (id, definition_id, process_key, business_key, status, state, state_format, "
    "row_version, started_by, created_at, updated_at, completed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SUBSCRIPTION = (
    "INSERT INTO message_subscriptions (instance_id, task_id, element_id, message_name, correlation) "
    "VALUES (?, ?, ?, ?, ?)"
)
# The subscription's id is found by its (task_id, message_name), unique: no round trip for the new id.
_INSERT_SUBSCRIPTION_KEY = (
    "INSERT INTO subscription_keys (subscription_id, name, value) "
    "SELECT id, ?, ? FROM message_subscriptions WHERE task_id = ? AND message_name = ?"
)
_DELETE_SUBSCRIPTION = "DELETE FROM message_subscriptions WHERE task_id = ? AND message_name = ?"
_DELETE_CLAIM = "DELETE FROM task_claims WHERE task_id = ?"
_CLAIM_FREE = "DELETE FROM task_claims WHERE task_id = ? AND motcua_claim_free(claimed_by, ?, task_id)"
_CLAIM_HOLDER = "SELECT claimed_by FROM task_claims WHERE task_id = ?"
# A claim in one statement: only a ready task can be claimed, and a claim held by someone else is only
# taken over when forced.  (SQLite needs the WHERE of the SELECT to parse the upsert.)
_TAKE_CLAIM = (
    "INSERT INTO task_claims (task_id, instance_id, claimed_by, claimed_at) "
    "SELECT id, instance_id, ?, ? FROM ready_tasks WHERE id = ? "
    "ON CONFLICT (task_id) DO UPDATE SET claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at "
    "WHERE task_claims.claimed_by = excluded.claimed_by OR ? "
    "RETURNING instance_id"
)
_INSERT_READY = (
    "INSERT INTO ready_tasks (id, instance_id, element_id, title, lane, form_ref, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TIMER = "INSERT INTO timers (task_id, instance_id, element_id, kind, due_at) VALUES (?, ?, ?, ?, ?)"
_INSERT_AUDIT = (
    "INSERT INTO audit (instance_id, task_id, element_id, action, actor, at, details) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


# A subscription's correlation keys go with it (ON DELETE CASCADE).
_CLEAR = (
    "DELETE FROM message_subscriptions WHERE instance_id = ?",
    "DELETE FROM timers WHERE instance_id = ?",
    "DELETE FROM ready_tasks WHERE instance_id = ?",
)


@functools.lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    return sql.replace("?", "%s")


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> bytes:
    return numbered(sql).encode()


class HotSQL:
    """Runs the hot-path statements on the DB-API connection under a SQLAlchemy transaction."""

    def __init__(self, conn: Connection) -> None:
        self._sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.driver_connection
        assert raw is not None, "the connection is closed"
        self._raw: Any = raw

    def _sql(self, sql: str) -> str:
        return sql if self._sqlite else _pyformat(sql)

    def timestamp(self, value: datetime | None) -> Any:
        """Bind a timestamp as ``UTCDateTime`` does: UTC text on SQLite, an aware datetime elsewhere."""
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self._sqlite else value

    def _run(self, sql: str, params: Sequence[Any]) -> Any:
        cursor = self._raw.cursor()
        cursor.execute(self._sql(sql), params)
        return cursor

    def run(self, sql: str, params: Sequence[Any]) -> None:
        """Run a write whose result nobody reads (``?`` marks its parameters): queued in a PostgreSQL unit
        of work (``pipeline_writes``), so that it goes to the server with the unit's next query or its
        COMMIT."""
        if self.queued and self._queue(sql, (params,)):
            return
        self._run(sql, params).close()

    def _queue(self, sql: str, rows: Sequence[Sequence[Any]]) -> bool:
        try:
            queue_write(self._raw, _numbered(sql), rows)
        except Unsupported:
            return False
        return True

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.queued and self._queue(sql, rows):
            return
        cursor = self._raw.cursor()
        if len(rows) == 1:  # the usual case; executemany costs several times more for one row
            cursor.execute(self._sql(sql), rows[0])
        else:
            cursor.executemany(self._sql(sql), rows)
        cursor.close()

    @property
    def queued(self) -> bool:
        """Whether statements are queued in a pipeline (a PostgreSQL unit of work) rather than run at once."""
        return not self._sqlite and in_pipeline(self._raw)

    def ready_task_version(self, task_id: str) -> tuple[str, int, str | None] | None:
        """Return (instance id, instance row version, who claimed it) of a ready task, or None."""
        cursor = self._run(_READY_WITH_VERSION, (task_id,))
        row = cursor.fetchone()
        cursor.close()
        return (row[0], int(row[1]), row[2]) if row is not None else None

    def update_instance(self, instance_id: str, expected_version: int, values: dict[str, Any]) -> Any:
        """Write the instance row if its version is still ``expected_version``.  In a queued unit the state
        is written by a statement of its own, after the rest of the row; without ``values["state"]`` (queued
        units only) it is left to a later ``update_instance_state``.

        Returns:
            The cursor of a statement whose ``rowcount`` must be checked (1, or 0 when another writer moved
            the version on); or None when the statement checks it itself (queued in a PostgreSQL unit: the
            unit then fails with ``STALE_INSTANCE``).
        """
        head = (
            expected_version + 1,
            values["status"],
            values["state_format"],
            self.timestamp(values["updated_at"]),
            self.timestamp(values["completed_at"]),
        )
        if self.queued:
            self.run(_UPDATE_INSTANCE_HEAD_CHECKED, (*head, instance_id, expected_version, instance_id))
            if "state" in values:
                self.update_instance_state(instance_id, values["state"])
            return None
        return self._run(_UPDATE_INSTANCE, (*head, values["state"], instance_id, expected_version))

    def update_instance_state(self, instance_id: str, state: str) -> None:
        """Write the state of an instance whose row this unit has already updated (and so locked)."""
        self.run(_UPDATE_INSTANCE_STATE, (state, instance_id))

    def insert_instance(self, values: dict[str, Any]) -> None:
        """Insert a new instance row (a dict with the table's columns)."""
        self.run(
            _INSERT_INSTANCE,
            (
                values["id"],
                values["definition_id"],
                values["process_key"],
                values["business_key"],
                values["status"],
                values["state"],
                values["state_format"],
                values["row_version"],
                values["started_by"],
                self.timestamp(values["created_at"]),
                self.timestamp(values["updated_at"]),
                self.timestamp(values["completed_at"]),
            ),
        )

    def take_claim(self, task_id: str, actor: str, at: datetime, force: bool) -> str | None:
        """Claim a ready task (``_TAKE_CLAIM``); return its instance id, or None if nothing was claimed."""
        cursor = self._run(_TAKE_CLAIM, (actor, self.timestamp(at), task_id, bool(force)))
        row = cursor.fetchone()
        cursor.close()
        return str(row[0]) if row is not None else None

    def release_claim_of(self, task_id: str, actor: str) -> None:
        """Delete the claim on a task unless someone other than ``actor`` holds it.

        One queued statement in a PostgreSQL unit (``motcua_claim_free`` fails the unit if someone else
        holds it); read and checked at once on SQLite.

        Raises:
            ConflictError: on SQLite, someone else holds the task.
        """
        if self.queued:
            self.run(_CLAIM_FREE, (task_id, actor))
            return
        cursor = self._run(_CLAIM_HOLDER, (task_id,))
        row = cursor.fetchone()
        cursor.close()
        if row is not None and row[0] != actor:
            raise ConflictError(f"Task {task_id} is claimed by {row[0]}", claimed_by=row[0])
        self.delete_claim(task_id)

    def delete_claim(self, task_id: str) -> None:
        """Remove the claim on a task, if any."""
        self.run(_DELETE_CLAIM, (task_id,))

    def delete_subscription(self, task_id: str, message_name: str) -> None:
        """Delete a message subscription with its correlation keys (ON DELETE CASCADE)."""
        self.run(_DELETE_SUBSCRIPTION, (task_id, message_name))

    def insert_subscription(
        self,
        instance_id: str,
        task_id: str,
        message_name: str,
        element_id: str,
        correlation: str,
        keys: Sequence[tuple[str, str]],
    ) -> None:
        """Insert a message subscription and its correlation keys (name, canonical value)."""
        self.run(_INSERT_SUBSCRIPTION, (instance_id, task_id, element_id, message_name, correlation))
        if keys:
            self._run_many(
                _INSERT_SUBSCRIPTION_KEY, [(name, value, task_id, message_name) for name, value in keys]
            )

    def clear_projection(self, instance_id: str) -> None:
        """Delete every projection row of an instance."""
        for sql in _CLEAR:
            self.run(sql, (instance_id,))

    def delete_ready(self, task_ids: Sequence[str]) -> None:
        """Delete ready-task rows by id."""
        marks = ", ".join("?" * len(task_ids))
        self.run(f"DELETE FROM ready_tasks WHERE id IN ({marks})", tuple(task_ids))  # noqa: S608

    def insert_ready(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ready-task rows (dicts with the table's columns)."""
        self._run_many(
            _INSERT_READY,
            [
                (
                    r["id"],
                    r["instance_id"],
                    r["element_id"],
                    r["title"],
                    r["lane"],
                    r["form_ref"],
                    self.timestamp(r["created_at"]),
                )
                for r in rows
            ],
        )

    def delete_timers(self, task_ids: Sequence[str]) -> None:
        """Delete wake-up rows (timers, retries) by task id."""
        marks = ", ".join("?" * len(task_ids))
        self.run(f"DELETE FROM timers WHERE task_id IN ({marks})", tuple(task_ids))  # noqa: S608

    def insert_timers(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert wake-up rows (dicts with task_id, instance_id, element_id, kind and due_at), unclaimed."""
        self._run_many(
            _INSERT_TIMER,
            [
                (r["task_id"], r["instance_id"], r["element_id"], r["kind"], self.timestamp(r["due_at"]))
                for r in rows
            ],
        )

    def insert_audit(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append audit rows (dicts with the table's columns)."""
        self._run_many(
            _INSERT_AUDIT,
            [
                (
                    r["instance_id"],
                    r["task_id"],
                    r["element_id"],
                    r["action"],
                    r["actor"],
                    self.timestamp(r["at"]),
                    r["details"],
                )
                for r in rows
            ],
        )
