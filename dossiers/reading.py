"""The read side of the dossier service: one dossier, pages of dossiers, the task queue, rendered documents.

A mixin of ``DossierService`` (``dossiers/service.py``).  Reads go through read-only units of work; the
dossiers and tasks they return carry their deadline flags (``dossiers/deadlines.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from engine.errors import NotFoundError, TaskStateError
from engine.facade import Engine

from . import deadlines, delivery_store, documents, store
from .access import OFFICIAL_LANES
from .lifecycle import CHANNEL_NAMES
from .status import STATUS_NAMES, Status


class DossierReading:
    """Reading dossiers and tasks; ``DossierService`` is built on it and provides what is declared here."""

    engine: Engine
    due_soon_working_hours: float
    typed_procedure: Callable[[str], dict[str, Any]]

    def _locked(self, conn: Connection, code: str) -> dict[str, Any]:
        found = store.get_dossier(conn, code, for_update=True)
        if found is None:
            raise NotFoundError(f"No dossier {code}", dossier_code=code)
        return found

    def _get(self, code: str) -> dict[str, Any]:
        with self.engine.store.unit_of_work(write=False) as uow:
            return self._locked(uow.conn, code)

    def dossier(self, code: str) -> dict[str, Any]:
        """Return a dossier with its status name, pauses, handover log, ready tasks and result summary.

        Raises:
            NotFoundError: no such dossier.
        """
        with self.engine.store.unit_of_work(write=False) as uow:
            dossier = self._locked(uow.conn, code)
            dossier["pauses"] = store.pauses_of(uow.conn, code)
            dossier["handovers"] = store.handovers_of(uow.conn, code)
            tasks = uow.ready_tasks(instance_id=dossier["instance_id"]) if dossier["instance_id"] else []
            dossier["tasks"] = [dict(t._mapping) for t in tasks]
            dossier["calendar_late"] = _late(dossier, self.engine.now())
            dossier["result"] = delivery_store.result_summary(uow.conn, code, dossier["delivery_method"])
            dossier.update(deadlines.dossier_flags(dossier))
        dossier["status_name"] = STATUS_NAMES[Status(dossier["status"])]
        dossier["channel_name"] = CHANNEL_NAMES.get(dossier["channel"])
        return dossier

    def task_queue(
        self, where: Mapping[str, Any], *, offset: int = 0, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]:
        """Return a page of ready dossier tasks, earliest due first, and the total (``store.task_queue``);
        each task carries its dossier's deadline flags (``deadlines.flags``)."""
        with self.engine.store.unit_of_work(write=False) as uow:
            items, total = store.task_queue(uow.conn, where, offset=offset, limit=limit)
        for item in items:
            finished, apologised = item.pop("dossier_finished_at"), item.pop("dossier_apologised")
            marks = item["due_soon_at"], item["overdue_at"]
            item.update(deadlines.flags(*marks, finished=finished is not None, apologised=bool(apologised)))
        return items, total

    def task_counts(self, where: Mapping[str, Any]) -> dict[str, Any]:
        """Return how many ready tasks ``where`` matches (as ``task_queue``): per lane and in all, each with
        how many are overdue and due soon (``store.task_counts``, one grouped query).

        Every lane of ``where["lanes"]`` (all official lanes when unrestricted) is listed, even if empty.
        """
        with self.engine.store.unit_of_work(write=False) as uow:
            found = {row["lane"]: row for row in store.task_counts(uow.conn, where)}
        order = [*(where.get("lanes") or OFFICIAL_LANES), *sorted(found, key=str)]
        lanes = [
            found.get(lane) or {"lane": lane, "total": 0, "overdue": 0, "due_soon": 0}
            for lane in dict.fromkeys(order)
        ]
        totals = {key: sum(row[key] for row in lanes) for key in ("total", "overdue", "due_soon")}
        return {"lanes": lanes, **totals}

    def task_with_dossier(self, task_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return a ready task (with who claimed it, if anyone) and the dossier it belongs to.

        Raises:
            NotFoundError: no such ready task, or it belongs to no dossier.
            TaskStateError: the task was already completed.
        """
        with self.engine.store.unit_of_work(write=False) as uow:
            row = uow.ready_task(task_id)
            if row is None and uow.task_was_completed(task_id):
                raise TaskStateError(
                    f"Task {task_id} is no longer ready: it was already completed", task_id=task_id
                )
            head = uow.instance_head(row.instance_id) if row is not None else None
            dossier = store.get_dossier(uow.conn, head.business_key) if head and head.business_key else None
            claim = uow.claim_of(task_id) if row is not None else None
        if row is None or dossier is None:
            raise NotFoundError(f"Task {task_id} does not exist or is not ready", task_id=task_id)
        claimed = {"claimed_by": claim.claimed_by, "claimed_at": claim.claimed_at} if claim else {}
        return {**row._mapping, "claimed_by": None, "claimed_at": None, **claimed}, dossier

    def dossiers(
        self, where: Mapping[str, Any] | None = None, *, offset: int = 0, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]:
        """Return a page of dossiers, newest first, matching ``where``; and how many match in all.

        Each dossier carries its deadline flags (``deadlines.flags``)."""
        with self.engine.store.unit_of_work(write=False) as uow:
            items, total = store.list_dossiers(uow.conn, where or {}, offset=offset, limit=limit)
        return [{**d, **deadlines.dossier_flags(d)} for d in items], total

    def document(self, code: str, kind: str) -> bytes:
        """Render a document of a dossier (receipt, supplement_request, refusal, apology, control_slip, ...).

        Raises:
            NotFoundError: no such dossier.
            ConflictError: the document does not exist at this stage.
            ValidationError: unknown kind.
        """
        dossier = self.dossier(code)
        procedure = self.typed_procedure(dossier["procedure_code"])
        data = self.engine.data(dossier["instance_id"]) if dossier["instance_id"] else {}
        return documents.render(kind, dossier, procedure, data, self.engine.now())


def _late(dossier: Mapping[str, Any], now: datetime) -> bool:
    due = dossier.get("due_at")
    return bool(due is not None and dossier.get("finished_at") is None and now > due)
