"""The dossier service: the catalogue, submitting dossiers, and what applicants and officials do to them.

It drives the engine facade (one unit of work per call) and keeps its own rows in step through the
``DossierTracker`` and ``DeliveryTracker`` listeners, inside the engine's transactions.  ``DossierService`` is
built on four mixins: the read side (``dossiers/reading.py``), the forms (``dossiers/forms.py``), the
calendar's admin table (``dossiers/calendar_admin.py``) and result delivery
(``dossiers/delivery_service.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from engine.errors import ConflictError, NotFoundError, TaskStateError, ValidationError
from engine.facade import Engine
from payments.fees import DEFAULT_POSTAGE_VND, POSTAGE_CODE, POSTAGE_TEXT, postage_for

from . import deadlines, store
from .calendar_admin import CalendarAdmin
from .catalogue_schemas import nfc
from .delivery import DeliveryTracker
from .delivery_service import DossierDelivery
from .forms import DECLARATION_TASK_FORMS, DossierForms, declaration_form
from .lifecycle import DossierTracker, calendar_for
from .procedure_terms import compute_fees, processing_time
from .procedures import Catalogue
from .reading import DossierReading
from .status import CHANNELS, FINAL, Status
from .task_context import TaskContext, task_context
from .timer_functions import timer_functions

DELIVERY_METHODS = ("online", "desk", "post")


@dataclass(frozen=True)
class Submission:
    """What an applicant submits to open a dossier."""

    applicant: Mapping[str, Any]
    channel: str = "online"
    delivery_method: str | None = None
    attachments: Sequence[Mapping[str, Any]] = ()
    pages: int = 1
    copies: int = 1
    # The declaration, when the applicant submits it together with the dossier (levels 3-4).
    form_data: Mapping[str, Any] | None = None
    # Called in the submission's transaction right after the dossier row is inserted, with the connection and
    # the new code; what it returns becomes the process data's ``attachments`` (dossiers/attachments.py).
    store_attachments: Callable[[Connection, str], list[dict[str, Any]]] | None = None
    # The SHA-256 of each attached file, in order: part of what makes a retried submission the same request.
    file_digests: Sequence[str] = ()


def _fingerprint(procedure_code: str, submission: Submission) -> str:
    """What makes two submissions the same request (the files by their SHA-256)."""
    request = {
        "procedure_code": procedure_code,
        "applicant": submission.applicant,
        "channel": submission.channel,
        "delivery_method": submission.delivery_method,
        "pages": submission.pages,
        "copies": submission.copies,
        "form_data": submission.form_data,
        "files": list(submission.file_digests),
    }
    return json.dumps(request, sort_keys=True, default=str, ensure_ascii=False)


class DossierService(DossierReading, DossierForms, CalendarAdmin, DossierDelivery):
    """Dossiers on top of the engine.

    Args:
        engine: the engine facade; the service registers its tracker as a listener.
        forms: form definitions by id (``catalogue.load_forms``).
        due_soon_working_hours: how close to its due date (in working hours) a dossier is due soon.
        postage_vnd: the postage a level-4 dossier whose result goes by post pays with its fees online.
    """

    def __init__(
        self,
        engine: Engine,
        forms: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        due_soon_working_hours: float = deadlines.DUE_SOON_WORKING_HOURS,
        postage_vnd: int = DEFAULT_POSTAGE_VND,
    ) -> None:
        self.engine = engine
        self.due_soon_working_hours = due_soon_working_hours
        self.postage_vnd = postage_vnd
        self._use_forms(forms or {})
        self.catalogue = Catalogue(engine)
        if not any(isinstance(listener, DossierTracker) for listener in engine.listeners):
            engine.add_listener(DossierTracker(due_soon_working_hours))
        if not any(isinstance(listener, DeliveryTracker) for listener in engine.listeners):
            engine.add_listener(DeliveryTracker(postage_vnd))  # after the tracker: the status is settled
        engine.add_timer_functions(timer_functions)  # working_days(), due_date()... in BPMN timers

    # -- catalogue (see dossiers/procedures.py) ------------------------------------------------------
    def seed_catalogue(self, folder: Path, actor: str = "seed") -> list[dict[str, Any]]:
        """Load procedures and forms from ``folder`` into the catalogue (``Catalogue.seed``); the task forms
        the service was given are kept."""
        seeded = self.catalogue.seed(folder, actor)
        if self.catalogue.forms:
            self._use_forms({**self.forms, **self.catalogue.forms})
        return seeded

    def procedures(self) -> list[dict[str, Any]]:
        """Return the public catalogue."""
        return self.catalogue.list()

    def procedure(self, code: str) -> dict[str, Any]:
        """Return one procedure's level-1 information (raises NotFoundError)."""
        return self.catalogue.get(code)

    def typed_procedure(self, code: str) -> dict[str, Any]:
        """Return one procedure with typed values (raises NotFoundError)."""
        return self.catalogue.typed(code)

    # -- submitting -------------------------------------------------------------------------------
    def submit(self, procedure_code: str, submission: Submission, *, owner: str) -> dict[str, Any]:
        """Open a dossier of a procedure (level 2 and up) and start its process.

        The dossier code is allocated in the same transaction as the process start, so codes have neither
        gaps nor duplicates.

        Raises:
            NotFoundError: no such procedure.
            ValidationError: level 1 (information only), bad channel, delivery method or applicant.
        """
        dossier, _ = self.submit_once(procedure_code, submission, owner=owner, idempotency_key=None)
        return dossier

    def submit_once(
        self, procedure_code: str, submission: Submission, *, owner: str, idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        """``submit``, once per ``idempotency_key`` of ``owner``: a retried submission (a lost answer, a
        double click, two at once) gives back the dossier the first one opened instead of a second dossier.

        Returns:
            (the dossier, True when this call opened it).

        Raises:
            ConflictError: the key was already used for a different submission.
            NotFoundError, ValidationError: as ``submit``.
        """
        procedure = self.typed_procedure(procedure_code)
        channel, delivery_method = submission.channel, submission.delivery_method
        self._check_submission(procedure, submission.applicant, channel, delivery_method)
        applicant = nfc(dict(submission.applicant))
        data = _process_data(procedure, submission, applicant, self.postage_vnd)
        now = self.engine.now()

        def prepare(conn: Connection) -> tuple[str, dict[str, Any]]:
            agency = procedure["agency"]["code"]
            code = store.dossier_code(
                agency, _local_day(now), store.next_sequence(conn, agency, _local_day(now))
            )
            store.insert_dossier(
                conn,
                {
                    "code": code,
                    "procedure_code": procedure["code"],
                    "level": procedure["level"],
                    "agency_code": agency,
                    "owner": owner,
                    "applicant": applicant,
                    "channel": CHANNELS[channel],
                    "delivery_method": delivery_method,
                    "status": int(Status.NEW),
                    "submitted_at": now,
                    "updated_at": now,
                },
            )
            extra: dict[str, Any] = {"dossier_code": code}
            if submission.store_attachments is not None:
                extra["attachments"] = submission.store_attachments(conn, code)
            return code, extra

        declaration = declaration_form(procedure) if submission.form_data is not None else None
        if declaration in self._validators:
            self._validate_form(declaration, submission.form_data)  # before anything is created
        if idempotency_key is None:
            view, created = self.engine.start(procedure["bpmn"], data, actor=owner, prepare=prepare), True
        else:
            view, created = self.engine.start_once(
                procedure["bpmn"],
                data,
                owner=owner,
                idempotency_key=idempotency_key,
                prepare=prepare,
                fingerprint=_fingerprint(procedure_code, submission),
            )
        if submission.form_data is not None:
            try:
                self._declare(view, nfc(dict(submission.form_data)), owner)
            except (ConflictError, TaskStateError):
                # A retry declares too (the first attempt may have stopped before), unless the first attempt
                # is declaring at this very moment: then it finishes the job.
                if created:
                    raise
        return self.dossier(view["business_key"]), created

    def _declare(self, view: Mapping[str, Any], form_data: dict[str, Any], owner: str) -> None:
        """Walk the applicant's opening tasks (information, then the declaration) with the submitted form."""
        for _ in range(3):
            task = next((t for t in view["tasks"] if t["lane"] == "applicant"), None)
            if task is None:
                return
            if task["form_ref"] in DECLARATION_TASK_FORMS:
                self.engine.complete_task(task["id"], {"form_data": form_data}, actor=owner)
                return
            if task["form_ref"] != "procedure_information":
                return
            view = self.engine.complete_task(task["id"], {}, actor=owner)

    @staticmethod
    def _check_submission(
        procedure: Mapping[str, Any], applicant: Mapping[str, Any], channel: str, delivery_method: str | None
    ) -> None:
        errors: dict[str, list[str]] = {}
        if int(procedure["level"]) < 2:
            errors["procedure_code"] = ["this procedure is offered as information only (level 1)"]
        if channel not in CHANNELS:
            errors["channel"] = [f"must be one of {', '.join(CHANNELS)}"]
        allowed = procedure.get("delivery_methods") or []
        if int(procedure["level"]) == 4 and delivery_method not in allowed:
            errors["delivery_method"] = [f"must be one of {', '.join(allowed) or DELIVERY_METHODS}"]
        if not isinstance(applicant, Mapping) or not str(applicant.get("name", "")).strip():
            errors["applicant.name"] = ["required"]
        elif delivery_method == "post" and not str(applicant.get("address") or "").strip():
            # The result is posted to this address: refuse now rather than fail at the post step later.
            errors["applicant.address"] = ["required when the result is delivered by post"]
        if errors:
            raise ValidationError("The dossier cannot be submitted", errors)

    # -- acting -----------------------------------------------------------------------------------
    def instance_version(self, instance_id: str) -> int:
        """Return the row version of an instance (the ETag of its tasks).

        Raises:
            NotFoundError: no such instance.
        """
        with self.engine.store.unit_of_work(write=False) as uow:
            head = uow.instance_head(instance_id)
        if head is None:
            raise NotFoundError(f"Instance {instance_id} does not exist", instance_id=instance_id)
        return int(head.row_version)

    def task_context(self, task_id: str) -> TaskContext:
        """Return a ready task with its claim, its dossier and its instance's row version (the task's ETag),
        read with one statement (``dossiers/task_context.py``).

        Raises:
            NotFoundError: no such ready task, or it belongs to no dossier.
            TaskStateError: the task was already completed.
        """
        with self.engine.store.unit_of_work(write=False) as uow:
            found = task_context(uow.conn, task_id)
        if found is None:  # say why (or, if it became ready meanwhile, read it the long way)
            task, dossier = self.task_with_dossier(task_id)
            return TaskContext(task, dossier, self.instance_version(task["instance_id"]))
        return found

    def complete_task(
        self,
        task_id: str,
        data: Mapping[str, Any] | None,
        actor: str,
        expected_version: int | None = None,
        *,
        known: TaskContext | None = None,
    ) -> dict[str, Any]:
        """Complete a dossier task, validating declared form data against the procedure's form first.

        A task whose form is a catalogue form is checked against it; the applicant's submission and
        download tasks check ``form_data`` against the procedure's declaration form.

        Args:
            known: the task's context if the caller already read it (``task_context``): a task with a form
                of its own is then checked without reading the task again.

        Raises:
            ValidationError: the data does not satisfy the form (``errors`` maps each field path).
            NotFoundError, TaskStateError, ConflictError: as ``Engine.complete_task``.
        """
        data = dict(nfc(dict(data or {})))
        form_ref = known.task["form_ref"] if known is not None and known.task["id"] == task_id else ""
        if form_ref != "" and form_ref not in DECLARATION_TASK_FORMS:
            form_id, payload, at = (form_ref, data, "") if form_ref in self._validators else (None, None, "")
        else:
            form_id, payload, at = self._form_to_check(task_id, data)
        if form_id is not None:
            self._validate_form(form_id, payload, at)
        seen = None
        if known is not None and known.task["id"] == task_id:
            seen = (known.task["instance_id"], known.row_version, known.task.get("claimed_by"))
        return self.engine.complete_task(
            task_id, data, actor=actor, expected_version=expected_version, seen=seen
        )

    def withdraw(self, code: str, actor: str) -> dict[str, Any]:
        """Withdraw a dossier at its applicant's request (status 7); only its owner may.

        Raises:
            NotFoundError: no such dossier (or not the caller's).
            TaskStateError: the dossier has already ended.
        """
        dossier = self._own(code, actor)
        if Status(dossier["status"]) in FINAL:
            raise TaskStateError(f"Dossier {code} has already ended", dossier_code=code)
        self.engine.cancel_instance(dossier["instance_id"], "Công dân yêu cầu rút hồ sơ", actor=actor)
        return self.dossier(code)

    def _own(self, code: str, actor: str) -> dict[str, Any]:
        dossier = self._get(code)
        if dossier["owner"] != actor:
            raise NotFoundError(f"No dossier {code}", dossier_code=code)
        return dossier

    def apologise(self, code: str, reason: str, new_due_at: datetime, actor: str) -> dict[str, Any]:
        """Record the apology letter of a late dossier with its new date; once per dossier.

        Raises:
            ValidationError: no reason, or the new date is not later than the current one.
            ConflictError: an apology was already sent, or the dossier is not running late.
        """
        if not reason or not reason.strip():
            raise ValidationError("An apology needs its reason", {"reason": ["required"]})
        with self.engine.store.unit_of_work() as uow:
            dossier = self._locked(uow.conn, code)
            if dossier["apology"] is not None:
                raise ConflictError(f"Dossier {code} already received its apology letter", dossier_code=code)
            due = dossier["due_at"]
            if due is None or dossier["finished_at"] is not None:
                raise ConflictError(f"Dossier {code} is not being processed", dossier_code=code)
            if new_due_at <= due:
                raise ValidationError(
                    "The new date must be later than the due date",
                    {"new_due_at": [f"must be after {due.isoformat()}"]},
                )
            now = self.engine.now()
            apology = {
                "reason": nfc(reason.strip()),
                "new_due_at": new_due_at.isoformat(),
                "previous_due_at": due.isoformat(),
                "at": now.isoformat(),
                "by": actor,
            }
            values = {"apology": apology, "due_at": new_due_at, "updated_at": now}
            if dossier["due_soon_at"] or dossier["overdue_at"]:
                calendar = calendar_for(uow.conn)
                hours = self.due_soon_working_hours
                values.update(deadlines.cleared_marks(calendar, now, new_due_at, hours))
            store.update_dossier(uow.conn, code, values)
        return self.dossier(code)

    def rate(self, code: str, score: int, comment: str | None, actor: str) -> dict[str, Any]:
        """Record the applicant's satisfaction (1-5) after the result was returned; once.

        Raises:
            ValidationError: the score is not 1-5.
            ConflictError: no result yet, or already rated.
        """
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise ValidationError("The rating must be a whole number from 1 to 5", {"score": ["1-5"]})
        with self.engine.store.unit_of_work() as uow:
            dossier = self._locked(uow.conn, code)
            if dossier["owner"] != actor:
                raise NotFoundError(f"No dossier {code}", dossier_code=code)
            if dossier["status"] != Status.RESULT_RETURNED:
                raise ConflictError("A dossier can be rated once its result is returned", dossier_code=code)
            if dossier["rating"] is not None:
                raise ConflictError(f"Dossier {code} was already rated", dossier_code=code)
            now = self.engine.now()
            store.update_dossier(
                uow.conn,
                code,
                {"rating": score, "rating_comment": nfc(comment), "rated_at": now, "updated_at": now},
            )
        return self.dossier(code)

    # -- deadlines ---------------------------------------------------------------------------------
    def mark_deadlines(self, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
        """Mark the dossiers that became due soon or overdue, each once (``deadlines.mark_deadlines``).

        Args:
            now: the time to judge by (default: the engine's clock).
            limit: at most this many dossiers of each kind.

        Returns:
            How many were marked: ``{"due_soon": n, "overdue": m}``.
        """
        now = now or self.engine.now()
        hours = self.due_soon_working_hours
        return deadlines.mark_deadlines(self.engine.store, now, hours=hours, limit=limit)


def _process_data(
    procedure: Mapping[str, Any], submission: Submission, applicant: dict[str, Any], postage_vnd: int = 0
) -> dict[str, Any]:
    """Return the data a dossier's process starts with: the procedure, its processing time and priced fees,
    the applicant, channel, delivery method and attachments.

    A level-4 dossier whose result goes back by post pays the postage online with its fees: it is one more
    fee line (``postage`` says how much), so ``fee_total`` is what the payment asks for.

    Raises:
        ValidationError: ``pages`` or ``copies`` is not a positive integer.
        NotFoundError: the procedure has no such channel.
    """
    fees = compute_fees(procedure, pages=submission.pages, copies=submission.copies)
    postage = postage_for(submission.delivery_method if procedure["level"] == 4 else None, postage_vnd)
    if postage:
        fees.append({"code": POSTAGE_CODE, "description": POSTAGE_TEXT, "amount": postage, "mode": "before"})
    amount, unit = processing_time(procedure, submission.channel)
    return {
        "procedure_code": procedure["code"],
        "procedure_name": procedure["name"],
        "level": procedure["level"],
        "processing_time": amount,
        "processing_unit": unit,
        "fees": [
            {k: v for k, v in f.items() if k in ("code", "description", "amount", "mode")} for f in fees
        ],
        "fee_total": sum((f["amount"] for f in fees if f.get("amount") is not None), start=0),
        "applicant": applicant,
        "channel": submission.channel,
        "delivery_method": submission.delivery_method,
        "postage": postage,
        "attachments": [dict(a) for a in submission.attachments],
    }


def _local_day(moment: datetime) -> Any:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date()
