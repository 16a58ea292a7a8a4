"""Keep each dossier in step with its process: status, receipt and due date, pauses, outcome, handovers.

``DossierTracker`` is an engine listener: it runs inside the engine's unit of work, so the dossier row always
agrees with the process state it was derived from; a rule it refuses (a second, different supplement list)
rolls the whole step back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from engine.errors import ValidationError
from engine.runtime import InstanceChange

from . import deadlines, store, webhooks
from .calendar import WorkingCalendar
from .delivery import receiver_note
from .procedure_terms import processing_time
from .status import ACCEPTED, PAUSING, Status, status_at

CHANNEL_NAMES = {1: "in_person", 2: "online", 3: "post"}
_DECISION_FIELDS = ("decision", "approval", "appraisal_result")
_NOTE_FIELDS = (
    "approval_note",
    "refusal_reason",
    "supplement_note",
    "appraisal_opinion",
    "escalation_note",
    "note",
)
# Elements that run beside the dossier's path (a leader's reminder) and never receive the dossier.
_SIDE_ROLES = frozenset({"escalation"})


def calendar_for(conn: Connection) -> WorkingCalendar:
    """Return the working calendar with the admin overrides stored in the database."""
    return WorkingCalendar(store.calendar_overrides(conn))


def due_at_for(
    conn: Connection, procedure: Mapping[str, Any], channel: int, received_at: datetime
) -> datetime:
    """Return when a dossier received at ``received_at`` is due, by its procedure's processing time."""
    amount, unit = processing_time(procedure, CHANNEL_NAMES.get(channel, "online"))
    calendar = calendar_for(conn)
    if unit == "working_hours":
        return calendar.add_working_hours(received_at, float(amount))
    if unit == "days":
        return received_at + timedelta(days=float(amount))
    return calendar.due_at(received_at, int(amount))


class DossierTracker:
    """The engine listener that derives dossier state from process changes.

    Args:
        due_soon_working_hours: the due-soon window, to clear deadline marks a later due date undoes.
    """

    def __init__(self, due_soon_working_hours: float = deadlines.DUE_SOON_WORKING_HOURS) -> None:
        self.due_soon_working_hours = due_soon_working_hours

    def prefetch(self, conn: Connection, business_key: str) -> dict[str, Callable[[], Any]]:
        """Queue the read of the dossier (locked for update) as the unit of work starts (``Prefetcher``):
        in PostgreSQL's pipeline it travels while the engine runs the steps, instead of being waited for
        after them."""
        return {"dossier": store.get_dossier_later(conn, business_key)}

    def __call__(self, conn: Connection, change: InstanceChange) -> None:
        """Apply one instance change to the dossier whose code is the instance's business key."""
        if change.business_key is None:
            return
        pending = change.prefetched.get("dossier")
        dossier = pending() if pending else store.get_dossier(conn, change.business_key, for_update=True)
        if dossier is None or dossier["instance_id"] not in (None, change.instance_id):
            return
        store.sync_open_tasks(
            conn,
            change.instance_id,
            dossier["agency_code"],
            change.projection.ready_tasks,
            known=change.previous_ready,
        )
        updates: dict[str, Any] = {}
        if dossier["instance_id"] is None:
            updates["instance_id"] = change.instance_id
        new = self._status(change, dossier)
        if new is not None and new != dossier["status"]:
            updates.update(self._transition(conn, dossier, Status(dossier["status"]), new, change))
            webhooks.status_changed(conn, dossier, new, change.now)  # outbox: commits with the change
        store.add_handovers(conn, self._handovers(dossier["code"], change))
        if updates:
            updates["updated_at"] = change.now
            store.update_dossier(conn, dossier["code"], updates)

    @staticmethod
    def _status(change: InstanceChange, dossier: Mapping[str, Any]) -> Status | None:
        if change.projection.status == "cancelled":
            cancelled_by = next((a["actor"] for a in change.audit if a["action"] == "cancelled"), None)
            return Status.WITHDRAWN if cancelled_by == dossier["owner"] else Status.STOPPED
        return status_at(change.projection.position)

    def _transition(
        self, conn: Connection, dossier: Mapping[str, Any], old: Status, new: Status, change: InstanceChange
    ) -> dict[str, Any]:
        code, now = dossier["code"], change.now
        updates: dict[str, Any] = {"status": int(new)}
        if old in PAUSING:
            store.close_pauses(conn, code, now)
        if new in PAUSING:
            store.open_pause(conn, code, PAUSING[new], now)
        if new == Status.SUPPLEMENT_REQUESTED:
            updates["supplement_items"] = self._supplement_list(dossier, change.data)
        if new in ACCEPTED and dossier["received_at"] is None:
            procedure = store.procedure_terms(conn, dossier["procedure_code"]) or {
                "code": dossier["procedure_code"]
            }
            due = due_at_for(conn, procedure, dossier["channel"], now)
            updates.update(received_at=now, due_at=due, original_due_at=due)
        elif old in PAUSING and dossier["received_at"] is not None:
            updates["due_at"] = self._due_with_pauses(conn, dossier)
            if dossier["due_soon_at"] or dossier["overdue_at"]:
                hours = self.due_soon_working_hours
                updates.update(deadlines.cleared_marks(calendar_for(conn), now, updates["due_at"], hours))
        updates.update(self._ending(dossier, new, change, updates.get("due_at")))
        return updates

    @staticmethod
    def _supplement_list(dossier: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
        items = data.get("supplement_items")
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, str) and i.strip() for i in items)
        ):
            raise ValidationError(
                "A supplement request needs the complete list of what to supplement",
                {"supplement_items": ["a non-empty list of items is required"]},
            )
        issued = dossier.get("supplement_items")
        if issued is not None and [i.strip() for i in items] != [i.strip() for i in issued]:
            raise ValidationError(
                "The dossier already received its one complete supplement list; it cannot be changed",
                {"supplement_items": [f"must be the list already issued: {'; '.join(issued)}"]},
            )
        return [i.strip() for i in items]

    @staticmethod
    def _due_with_pauses(conn: Connection, dossier: Mapping[str, Any]) -> datetime:
        received = dossier["received_at"]
        pauses = [
            (max(p["started_at"], received), p["ended_at"])
            for p in store.pauses_of(conn, dossier["code"])
            if p["ended_at"] is None or p["ended_at"] > received
        ]
        due: datetime = calendar_for(conn).extend_for_pauses(dossier["original_due_at"], pauses)
        return due

    @staticmethod
    def _ending(
        dossier: Mapping[str, Any], new: Status, change: InstanceChange, due_at: datetime | None
    ) -> dict[str, Any]:
        now, updates = change.now, {}
        if new == Status.NOT_RECEIVED:
            updates = {"refusal_reason": change.data.get("refusal_reason"), "finished_at": now}
        elif new == Status.WITHDRAWN:
            updates = {"withdrawn_at": now, "finished_at": now}
        elif new == Status.STOPPED:
            updates = {"finished_at": now}
        elif new in (Status.PROCESSED, Status.RESULT_RETURNED) and dossier["outcome"] is None:
            # An apology moves the appointment, not the legal due date the outcome is judged by.
            apology = dossier.get("apology")
            legal = datetime.fromisoformat(apology["previous_due_at"]) if apology else None
            due = legal or due_at or dossier["due_at"]
            outcome = WorkingCalendar().outcome(due, now) if due is not None else None
            updates = {"finished_at": now, "outcome": outcome}
        return updates

    @staticmethod
    def _handovers(code: str, change: InstanceChange) -> list[dict[str, Any]]:
        waiting = change.projection.position if change.projection.status == "running" else ()
        next_roles = sorted(
            {
                p["lane"]
                for p in waiting
                if p.get("lane") and p.get("properties", {}).get("role") not in _SIDE_ROLES
            }
        )
        rows = []
        for entry in change.audit:
            if entry["action"] != "task_completed":
                continue
            details = json.loads(entry["details"] or "{}")
            fields = set(details.get("fields", []))
            given = change.submitted.get(entry["task_id"] or "", change.data)
            result = next((str(given[f]) for f in _DECISION_FIELDS if f in fields and f in given), "done")
            note = next((str(given[f]) for f in _NOTE_FIELDS if f in fields and given.get(f)), None)
            # A hand-over at the desk names who received the result: the hop goes to the applicant.
            received = receiver_note(given) if "handed_over_to" in fields else None
            rows.append(
                {
                    "dossier_code": code,
                    "at": change.now,
                    "element_id": entry["element_id"],
                    "from_role": details.get("lane"),
                    "to_role": ", ".join(next_roles) or ("applicant" if received else None),
                    "actor": entry["actor"],
                    "result": result,
                    "note": received or note,
                }
            )
        return rows
