"""The dossier service: the catalogue, submitting dossiers, and what applicants and officials do to them.

It drives the engine facade (one unit of work per call) and keeps its own rows in step through the
``DossierTracker`` listener, inside the engine's transactions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy.engine import Connection

from engine.errors import ConflictError, NotFoundError, TaskStateError, ValidationError
from engine.facade import Engine
from handlers.documents import render_form

from . import deadlines, documents, store
from .calendar import ANNOUNCED_OVERRIDES
from .catalogue import (
    compute_fees,
    nfc,
    processing_time,
)
from .lifecycle import CHANNEL_NAMES, DossierTracker, calendar_for
from .procedures import Catalogue
from .status import CHANNELS, FINAL, STATUS_NAMES, Status
from .timer_functions import timer_functions

DELIVERY_METHODS = ("online", "desk", "post")
FORMATS = Draft202012Validator.FORMAT_CHECKER  # dates, e-mail addresses: checked, not just annotated
# Tasks where the applicant declares the procedure's form (see workflows/CONVENTIONS.md).
DECLARATION_TASK_FORMS = frozenset({"dossier_submission", "form_download"})


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


class DossierService:
    """Dossiers on top of the engine.

    Args:
        engine: the engine facade; the service registers its tracker as a listener.
        forms: form definitions by id (``catalogue.load_forms``).
        due_soon_working_hours: how close to its due date (in working hours) a dossier is due soon.
    """

    def __init__(
        self,
        engine: Engine,
        forms: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        due_soon_working_hours: float = deadlines.DUE_SOON_WORKING_HOURS,
    ) -> None:
        self.engine = engine
        self.due_soon_working_hours = due_soon_working_hours
        self._use_forms(forms or {})
        self.catalogue = Catalogue(engine)
        if not any(isinstance(listener, DossierTracker) for listener in engine.listeners):
            engine.add_listener(DossierTracker(due_soon_working_hours))
        engine.add_timer_functions(timer_functions)  # working_days(), due_date()... in BPMN timers

    # -- catalogue (see dossiers/procedures.py) ------------------------------------------------------
    def seed_catalogue(self, folder: Path, actor: str = "seed") -> list[dict[str, Any]]:
        """Load procedures and forms from ``folder`` into the catalogue (``Catalogue.seed``)."""
        seeded = self.catalogue.seed(folder, actor)
        if self.catalogue.forms:
            self._use_forms(self.catalogue.forms)
        return seeded

    def _use_forms(self, forms: Mapping[str, Mapping[str, Any]]) -> None:
        """Keep the form definitions and a compiled validator for each."""
        self.forms: dict[str, Any] = dict(forms)
        self._validators = {
            form_id: Draft202012Validator(form["schema"], format_checker=FORMATS)
            for form_id, form in forms.items()
        }

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
        procedure = self.typed_procedure(procedure_code)
        channel, delivery_method = submission.channel, submission.delivery_method
        self._check_submission(procedure, submission.applicant, channel, delivery_method)
        applicant = nfc(dict(submission.applicant))
        fees = compute_fees(procedure, pages=submission.pages, copies=submission.copies)
        amount, unit = processing_time(procedure, channel)
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

        data = {
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
            "channel": channel,
            "delivery_method": delivery_method,
            "attachments": [dict(a) for a in submission.attachments],
        }
        declaration = _declaration_form(procedure) if submission.form_data is not None else None
        if declaration in self._validators:
            self._validate_form(declaration, submission.form_data)  # before anything is created
        view = self.engine.start(procedure["bpmn"], data, actor=owner, prepare=prepare)
        if submission.form_data is not None:
            self._declare(view, nfc(dict(submission.form_data)), owner)
        return self.dossier(view["business_key"])

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

    def complete_task(
        self, task_id: str, data: Mapping[str, Any] | None, actor: str, expected_version: int | None = None
    ) -> dict[str, Any]:
        """Complete a dossier task, validating declared form data against the procedure's form first.

        A task whose form is a catalogue form is checked against it; the applicant's submission and
        download tasks check ``form_data`` against the procedure's declaration form.

        Raises:
            ValidationError: the data does not satisfy the form (``errors`` maps each field path).
            NotFoundError, TaskStateError, ConflictError: as ``Engine.complete_task``.
        """
        data = dict(nfc(dict(data or {})))
        form_id, payload = self._form_to_check(task_id, data)
        if form_id is not None:
            self._validate_form(form_id, payload)
        return self.engine.complete_task(task_id, data, actor=actor, expected_version=expected_version)

    def _form_to_check(self, task_id: str, data: Mapping[str, Any]) -> tuple[str | None, Any]:
        with self.engine.store.unit_of_work(write=False) as uow:
            row = uow.ready_task(task_id)
            if row is None:
                return None, None
            if row.form_ref in self._validators:
                return row.form_ref, data
            if row.form_ref not in DECLARATION_TASK_FORMS:
                return None, None
            head = uow.instance_head(row.instance_id)
            dossier = store.get_dossier(uow.conn, head.business_key) if head and head.business_key else None
            procedure = store.get_procedure(uow.conn, dossier["procedure_code"]) if dossier else None
        form_id = _declaration_form(procedure or {})
        if form_id not in self._validators:
            return None, None
        return form_id, data.get("form_data")

    def form_schema_for(self, task: Mapping[str, Any], dossier: Mapping[str, Any]) -> dict[str, Any] | None:
        """Return the form (id, title, JSON Schema) a task asks the caller to fill, if it is a known form."""
        form_id = task.get("form_ref")
        if form_id in DECLARATION_TASK_FORMS:
            form_id = _declaration_form(self.procedure(dossier["procedure_code"]))
        form = self.forms.get(form_id or "")
        return dict(form) if form else None

    def _validate_form(self, form_id: str, payload: Any) -> None:
        errors: dict[str, list[str]] = {}
        if not isinstance(payload, Mapping):
            errors["form_data"] = ["the declaration is required"]
        else:
            for error in self._validators[form_id].iter_errors(dict(payload)):
                for field, message in _field_errors(error):
                    errors.setdefault(field, []).append(message)
        if errors:
            raise ValidationError(f"The declaration '{form_id}' has {len(errors)} invalid field(s)", errors)

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

    # -- reading ----------------------------------------------------------------------------------
    def _locked(self, conn: Connection, code: str) -> dict[str, Any]:
        found = store.get_dossier(conn, code, for_update=True)
        if found is None:
            raise NotFoundError(f"No dossier {code}", dossier_code=code)
        return found

    def _get(self, code: str) -> dict[str, Any]:
        with self.engine.store.unit_of_work(write=False) as uow:
            return self._locked(uow.conn, code)

    def dossier(self, code: str) -> dict[str, Any]:
        """Return a dossier with its status name, pauses, handover log and ready tasks.

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

    def task_with_dossier(self, task_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return a ready task and the dossier it belongs to.

        Raises:
            NotFoundError: no such ready task, or it belongs to no dossier.
        """
        with self.engine.store.unit_of_work(write=False) as uow:
            row = uow.ready_task(task_id)
            if row is None and uow.task_was_completed(task_id):
                raise TaskStateError(
                    f"Task {task_id} is no longer ready: it was already completed", task_id=task_id
                )
            head = uow.instance_head(row.instance_id) if row is not None else None
            dossier = store.get_dossier(uow.conn, head.business_key) if head and head.business_key else None
        if row is None or dossier is None:
            raise NotFoundError(f"Task {task_id} does not exist or is not ready", task_id=task_id)
        return dict(row._mapping), dossier

    def dossiers(
        self, where: Mapping[str, Any] | None = None, *, offset: int = 0, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]:
        """Return a page of dossiers, newest first, matching ``where``; and how many match in all.

        Each dossier carries its deadline flags (``deadlines.flags``)."""
        with self.engine.store.unit_of_work(write=False) as uow:
            items, total = store.list_dossiers(uow.conn, where or {}, offset=offset, limit=limit)
        return [{**d, **deadlines.dossier_flags(d)} for d in items], total

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

    def document(self, code: str, kind: str) -> bytes:
        """Render a document of a dossier (receipt, supplement_request, refusal, apology, control_slip, ...).

        Raises:
            NotFoundError: no such dossier.
            ConflictError: the document does not exist at this stage.
            ValidationError: unknown kind.
        """
        dossier = self.dossier(code)
        procedure = self.typed_procedure(dossier["procedure_code"])
        data = self.engine.show(dossier["instance_id"])["data"] if dossier["instance_id"] else {}
        return documents.render(kind, dossier, procedure, data, self.engine.now())

    def form_pdf(self, procedure_code: str, form_id: str) -> bytes:
        """Return the blank template of one of a procedure's forms, to download and fill in (level 2+).

        Raises:
            NotFoundError: no such procedure, or the form is not one of its components'.
        """
        procedure = self.procedure(procedure_code)
        if (
            form_id not in {c.get("form") for c in procedure.get("components") or ()}
            or form_id not in self.forms
        ):
            raise NotFoundError(f"Procedure {procedure_code} has no form {form_id}", form_id=form_id)
        return render_form(self.forms[form_id])

    def prefilled_form(self, code: str) -> bytes:
        """Return the declaration form of a dossier filled with the data the applicant declared, to print.

        Raises:
            NotFoundError: no such dossier.
            ConflictError: nothing has been declared yet.
        """
        dossier = self.dossier(code)
        procedure = self.procedure(dossier["procedure_code"])
        form_id = _declaration_form(procedure)
        data = self.engine.show(dossier["instance_id"])["data"] if dossier["instance_id"] else {}
        declared = data.get("form_data")
        if form_id not in self.forms or not isinstance(declared, Mapping):
            raise ConflictError(f"Dossier {code} has no declared form yet", dossier_code=code)
        return render_form(self.forms[form_id], declared)

    # -- the calendar's admin table ---------------------------------------------------------------
    def calendar_days(self) -> list[dict[str, Any]]:
        """Return the extra days off and make-up working days, in date order."""
        with self.engine.store.unit_of_work(write=False) as uow:
            return store.calendar_days_list(uow.conn)

    def set_calendar_day(self, day: date, *, working: bool, note: str, actor: str) -> dict[str, Any]:
        """Declare ``day`` a day off or a make-up working day (replacing an earlier declaration).

        Raises:
            ValidationError: no note saying which announcement it follows.
        """
        if not note or not note.strip():
            raise ValidationError("Say which announcement the day follows", {"note": ["required"]})
        values = {
            "day": day,
            "working": working,
            "note": nfc(note.strip()),
            "created_by": actor,
            "created_at": self.engine.now(),
        }
        with self.engine.store.unit_of_work() as uow:
            store.set_calendar_day(uow.conn, values)
        return values

    def unset_calendar_day(self, day: date) -> None:
        """Remove the declaration of a day.

        Raises:
            NotFoundError: the day has no declaration.
        """
        with self.engine.store.unit_of_work() as uow:
            if not store.delete_calendar_day(uow.conn, day):
                raise NotFoundError(f"{day.isoformat()} has no declaration", day=day.isoformat())

    def seed_calendar(self, actor: str = "seed") -> int:
        """Add the announced day swaps the holidays package lacks, unless an admin already declared them."""
        now = self.engine.now()
        rows = [(day, False) for day in ANNOUNCED_OVERRIDES.days_off]
        rows += [(day, True) for day in ANNOUNCED_OVERRIDES.working_days]
        with self.engine.store.unit_of_work() as uow:
            added = [
                store.add_calendar_day_if_absent(
                    uow.conn,
                    {
                        "day": day,
                        "working": working,
                        "created_by": actor,
                        "created_at": now,
                        "note": "Hoán đổi ngày làm việc dịp Tết Dương lịch 2026 (12729/VPCP-KGVX)",
                    },
                )
                for day, working in sorted(rows)
            ]
        return sum(added)


def _field_errors(error: Any) -> list[tuple[str, str]]:
    """Name the field a JSON Schema error is about (a missing property is named itself, not its parent)."""
    path = ["form_data", *(str(p) for p in error.absolute_path)]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [(".".join([*path, name]), "required") for name in missing]
    return [(".".join(path), error.message)]


def _declaration_form(procedure: Mapping[str, Any]) -> str | None:
    """Return the id of a procedure's declaration form: its first component that has a form."""
    return next((c["form"] for c in procedure.get("components") or () if c.get("form")), None)


def _local_day(moment: datetime) -> Any:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date()


def _late(dossier: Mapping[str, Any], now: datetime) -> bool:
    due = dossier.get("due_at")
    return bool(due is not None and dossier.get("finished_at") is None and now > due)
