"""What a task request needs to know before it acts, in one statement: the ready task, who claimed it, the
row version of its instance (the task's ETag) and the dossier the instance runs.

Every request on one task (``GET /api/v1/tasks/{id}``, claim, unclaim, complete) reads these first to check
that the caller may act; reading them with one joined statement instead of one query each (ready task,
instance, dossier, claim) saves three round trips and their SQLAlchemy overhead per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from engine.fast_sql import FastStatement
from engine.tables import instances, ready_tasks, task_claims

from .store import decode
from .tables import dossiers

_TASK = [c.label(f"task__{c.name}") for c in ready_tasks.c]
# The dossier's columns a task request reads (who may act: owner, agency; the task page: code, procedure,
# status, due time and the deadline flags), not the applicant's details and the rest: fewer columns to
# describe, convert and decode on every request.
DOSSIER_COLUMNS = (
    "code",
    "procedure_code",
    "level",
    "agency_code",
    "owner",
    "status",
    "due_at",
    "finished_at",
    "apology",
    "due_soon_at",
    "overdue_at",
)
_DOSSIER = [dossiers.c[name].label(f"dossier__{name}") for name in DOSSIER_COLUMNS]
# Built once (building a Core statement costs more than running this one), run on the driver's cursor.
_SELECT = FastStatement(
    select(
        *_TASK,
        instances.c.row_version,
        task_claims.c.claimed_by,
        task_claims.c.claimed_at,
        *_DOSSIER,
    )
    .join(instances, instances.c.id == ready_tasks.c.instance_id)
    .join(dossiers, dossiers.c.code == instances.c.business_key)
    .outerjoin(task_claims, task_claims.c.task_id == ready_tasks.c.id)
    .where(ready_tasks.c.id == bindparam("task_id"))
)
_TASK_KEYS = [(c.name, f"task__{c.name}") for c in ready_tasks.c]


@dataclass(frozen=True)
class TaskContext:
    """A ready task with its claim (``claimed_by`` and ``claimed_at``, None if nobody holds it), its
    dossier (the ``DOSSIER_COLUMNS``), and the row version of its instance."""

    task: dict[str, Any]
    dossier: dict[str, Any]
    row_version: int


class _Row:
    """Just enough of a SQLAlchemy row for ``store.decode``."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping


def task_context(conn: Connection, task_id: str) -> TaskContext | None:
    """Return the context of a ready task that belongs to a dossier, or None (not ready, or no dossier)."""
    row = _SELECT.first(conn, {"task_id": task_id})
    if row is None:
        return None
    values = row._mapping
    task = {name: values[key] for name, key in _TASK_KEYS}
    task["claimed_by"], task["claimed_at"] = values["claimed_by"], values["claimed_at"]
    dossier = decode(_Row({name: values[f"dossier__{name}"] for name in DOSSIER_COLUMNS}))
    return TaskContext(task, dossier, int(values["row_version"]))
