"""The queries of wake-ups (due timers and retries) and task claims, mixed into ``UnitOfWork``.

A worker claims due rows with one statement (``claim_statement``) that walks the ``(kind, due_at)`` index
from the earliest due time and skips rows another worker is claiming; see ``Engine.fire_due_timers``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from . import tables as t


class WakeUpQueries:
    """Claiming, giving back and finding wake-ups and stale task claims, in the unit's transaction."""

    conn: Connection

    def claim_due_timers(
        self, now: datetime, *, worker: str, lease_until: datetime, kind: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Take up to ``limit`` due wake-ups that nobody holds, earliest first, until ``lease_until``.

        One statement (see ``claim_statement``): rows another worker is claiming right now are skipped
        (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite writers hold the database lock), and rows whose
        lease has run out are due again.  The claim only keeps workers from duplicating work: firing checks
        the wake-up against the instance in the instance's own transaction, which alone makes it count.
        """
        statement = claim_statement(kind=kind, limit=limit)
        params = {"now": now, "worker": worker, "lease_until": lease_until}
        rows = [dict(row._mapping) for row in self.conn.execute(statement, params)]
        rows.sort(key=lambda row: row["due_at"])
        return rows

    def release_timer(self, task_id: str, worker: str, until: datetime | None = None) -> None:
        """Give a claimed wake-up back: due again at once, or only after ``until`` (a failing one)."""
        c = t.timers.c
        self.conn.execute(
            update(t.timers)
            .where(c.task_id == task_id, c.claimed_by == worker)
            .values(claimed_by=None if until is None else worker, lease_until=until)
        )

    def next_due(self, kind: str | None = None, *, now: datetime | None = None) -> datetime | None:
        """Return the earliest due time of the pending wake-ups (of one kind), or None.

        With ``now``: of those a worker could claim then, leaving out the ones another worker holds (its
        lease runs past ``now``): a wake-up being fired elsewhere is nothing to wait for.  The walk of the
        ``(kind, due_at)`` index stops at the first row not held, so it stays cheap.
        """
        query = select(func.min(t.timers.c.due_at))
        if kind is not None:
            query = query.where(t.timers.c.kind == kind)
        if now is not None:
            query = query.where(or_(t.timers.c.lease_until.is_(None), t.timers.c.lease_until < now))
        found: datetime | None = self.conn.execute(query).scalar()
        return found

    def stale_claims(self, before: datetime, limit: int) -> list[dict[str, Any]]:
        """Lock and return task claims taken before ``before`` (skipping rows others are releasing)."""
        c = t.task_claims.c
        query = (
            select(t.task_claims)
            .where(c.claimed_at < before)
            .order_by(c.claimed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [dict(row._mapping) for row in self.conn.execute(query)]


def claim_statement(*, kind: str | None, limit: int) -> Any:
    """Return the statement that claims due wake-ups (params: now, worker, lease_until).

    The inner select walks the ``(kind, due_at)`` index (or ``due_at`` for every kind) from the earliest
    due time and stops after ``limit`` rows: a tick costs the same with ten or a million pending timers.
    """
    c = t.timers.c
    due = (
        select(c.task_id)
        .where(c.due_at <= bindparam("now"))
        .where(or_(c.lease_until.is_(None), c.lease_until < bindparam("now")))
        .order_by(c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if kind is not None:
        due = due.where(c.kind == kind)
    return (
        update(t.timers)
        .where(c.task_id.in_(due.scalar_subquery()))
        .values(claimed_by=bindparam("worker"), lease_until=bindparam("lease_until"))
        .returning(c.task_id, c.instance_id, c.element_id, c.kind, c.due_at)
    )
