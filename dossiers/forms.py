"""The procedures' forms in the dossier service: validating declared data, and blank or filled-in PDFs.

A mixin of ``DossierService`` (``dossiers/service.py``): it keeps the form definitions with a compiled
JSON Schema validator for each, checks what a task declares against the procedure's form, and renders forms
to download and print.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

from engine.errors import ConflictError, NotFoundError, ValidationError
from engine.facade import Engine
from handlers.documents import render_form

from . import store

FORMATS = Draft202012Validator.FORMAT_CHECKER  # dates, e-mail addresses: checked, not just annotated
# Tasks where the applicant declares the procedure's form (see workflows/CONVENTIONS.md).
DECLARATION_TASK_FORMS = frozenset({"dossier_submission", "form_download"})


class DossierForms:
    """Form checks and form PDFs; ``DossierService`` is built on it and provides what is declared here."""

    engine: Engine
    procedure: Callable[[str], dict[str, Any]]
    dossier: Callable[[str], dict[str, Any]]

    def _use_forms(self, forms: Mapping[str, Mapping[str, Any]]) -> None:
        """Keep the form definitions and a compiled validator for each."""
        self.forms: dict[str, Any] = dict(forms)
        self._validators = {
            form_id: Draft202012Validator(form["schema"], format_checker=FORMATS)
            for form_id, form in forms.items()
        }

    def _form_to_check(self, task_id: str, data: Mapping[str, Any]) -> tuple[str | None, Any, str]:
        """Return the form a task's data must satisfy, the part of the data it checks, and where that part
        sits in the data (the prefix of the field paths in errors): the task's own form checks all of it,
        the applicant's declaration tasks check ``form_data`` against the procedure's declaration form."""
        with self.engine.store.unit_of_work(write=False) as uow:
            row = uow.ready_task(task_id)
            if row is None:
                return None, None, ""
            if row.form_ref in self._validators:
                return row.form_ref, data, ""
            if row.form_ref not in DECLARATION_TASK_FORMS:
                return None, None, ""
            head = uow.instance_head(row.instance_id)
            dossier = store.get_dossier(uow.conn, head.business_key) if head and head.business_key else None
            procedure = store.get_procedure(uow.conn, dossier["procedure_code"]) if dossier else None
        form_id = declaration_form(procedure or {})
        if form_id not in self._validators:
            return None, None, ""
        return form_id, data.get("form_data"), "form_data"

    def form_schema_for(self, task: Mapping[str, Any], dossier: Mapping[str, Any]) -> dict[str, Any] | None:
        """Return the form (id, title, JSON Schema) a task asks the caller to fill, if it is a known form."""
        form_id = task.get("form_ref")
        if form_id in DECLARATION_TASK_FORMS:
            form_id = declaration_form(self.procedure(dossier["procedure_code"]))
        form = self.forms.get(form_id or "")
        return dict(form) if form else None

    def _validate_form(self, form_id: str, payload: Any, at: str = "form_data") -> None:
        """Check ``payload`` against a form; ``at`` is where it sits in the request (the errors' prefix)."""
        errors: dict[str, list[str]] = {}
        if not isinstance(payload, Mapping):
            errors[at or "data"] = ["the declaration is required" if at else "an object is required"]
        else:
            for error in self._validators[form_id].iter_errors(dict(payload)):
                for field, message in _field_errors(error, at):
                    errors.setdefault(field, []).append(message)
        if errors:
            raise ValidationError(f"The declaration '{form_id}' has {len(errors)} invalid field(s)", errors)

    def procedure_form(self, procedure_code: str, form_id: str) -> dict[str, Any]:
        """Return one of a procedure's forms: id, title and JSON Schema (what a declaration must satisfy).

        Raises:
            NotFoundError: no such procedure, or the form is not one of its components'.
        """
        procedure = self.procedure(procedure_code)
        if (
            form_id not in {c.get("form") for c in procedure.get("components") or ()}
            or form_id not in self.forms
        ):
            raise NotFoundError(f"Procedure {procedure_code} has no form {form_id}", form_id=form_id)
        return dict(self.forms[form_id])

    def form_pdf(self, procedure_code: str, form_id: str) -> bytes:
        """Return the blank template of one of a procedure's forms, to download and fill in (level 2+).

        Raises:
            NotFoundError: no such procedure, or the form is not one of its components'.
        """
        return render_form(self.procedure_form(procedure_code, form_id))

    def declaration(self, code: str) -> dict[str, Any]:
        """Return a dossier's declaration: ``form`` (id, title, JSON Schema of its procedure's declaration
        form, or None if it has none) and ``form_data`` (what the applicant declared, None until then).

        Raises:
            NotFoundError: no such dossier.
        """
        dossier = self.dossier(code)
        form_id = declaration_form(self.procedure(dossier["procedure_code"]))
        data = self.engine.data(dossier["instance_id"]) if dossier["instance_id"] else {}
        declared = data.get("form_data")
        return {
            "form": dict(self.forms[form_id]) if form_id in self.forms else None,
            "form_data": dict(declared) if isinstance(declared, Mapping) else None,
        }

    def prefilled_form(self, code: str) -> bytes:
        """Return the declaration form of a dossier filled with the data the applicant declared, to print.

        Raises:
            NotFoundError: no such dossier.
            ConflictError: nothing has been declared yet.
        """
        found = self.declaration(code)
        if found["form"] is None or found["form_data"] is None:
            raise ConflictError(f"Dossier {code} has no declared form yet", dossier_code=code)
        return render_form(found["form"], found["form_data"])


def declaration_form(procedure: Mapping[str, Any]) -> str | None:
    """Return the id of a procedure's declaration form: its first component that has a form."""
    return next((c["form"] for c in procedure.get("components") or () if c.get("form")), None)


def _field_errors(error: Any, at: str = "form_data") -> list[tuple[str, str]]:
    """Name the field a JSON Schema error is about (a missing property is named itself, not its parent),
    as a dotted path under ``at`` (``""``: the data's own fields)."""
    path = [*([at] if at else []), *(str(p) for p in error.absolute_path)]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [(".".join([*path, name]), "required") for name in missing]
    return [(".".join(path) or "data", error.message)]
