"""The procedure catalogue: procedure records (level 1 information) and the form definitions they use.

Procedures live in ``workflows/procedures/<code>.json``, forms in ``workflows/forms/<id>.json`` (English keys,
Vietnamese values).  Loading is strict (the schemas are in ``dossiers/catalogue_schemas.py``) and raises
:class:`engine.errors.ValidationError` naming the file, with ``errors`` keyed by dotted field paths
(``fees.0.mode``).  Fees, processing times and the Decree 42 class are computed in
``dossiers/procedure_terms.py``; the names are re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import marshmallow as ma
from marshmallow.exceptions import SCHEMA

from engine.errors import NotFoundError, ValidationError

from .catalogue_schemas import FormSchema, ProcedureSchema
from .procedure_terms import MOT_PHAN, TOAN_TRINH, compute_fees, decree_42_class, processing_time

__all__ = [
    "FORMS_DIR",
    "MOT_PHAN",
    "PROCEDURES_DIR",
    "TOAN_TRINH",
    "ProcedureSchema",
    "compute_fees",
    "decree_42_class",
    "dump_procedure",
    "load_forms",
    "load_procedures",
    "load_workflow_forms",
    "processing_time",
]

ROOT = Path(__file__).resolve().parents[1]
PROCEDURES_DIR = ROOT / "workflows" / "procedures"
FORMS_DIR = ROOT / "workflows" / "forms"
TASK_FORMS_DIR = ROOT / "workflows" / "task_forms"


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error messages into ``{"fees.0.mode": [...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = prefix if key == SCHEMA else f"{prefix}.{key}" if prefix else str(key)
            for where, texts in _flatten(value, path).items():
                out.setdefault(where, []).extend(texts)
    elif isinstance(messages, list):
        for item in messages:
            for where, texts in _flatten(item, prefix).items():
                out.setdefault(where, []).extend(texts)
    else:
        out.setdefault(prefix or SCHEMA, []).append(str(messages))
    return out


def _read_json(path: Path, *, decimals: bool) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal if decimals else None)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"Cannot read {path}: {exc}", {"_file": [str(exc)]}) from exc


def _load_file(schema: ma.Schema, path: Path, what: str, key: str) -> dict[str, Any]:
    """Load one file with ``schema``; its ``key`` field must equal the file name without ``.json``."""
    try:
        loaded: dict[str, Any] = schema.load(_read_json(path, decimals=what == "procedure"))
    except ma.ValidationError as exc:
        errors = _flatten(exc.messages)
        raise ValidationError(f"Invalid {what} file {path}: {', '.join(sorted(errors))}", errors) from exc
    if loaded[key] != path.stem:
        message = f"The {key} '{loaded[key]}' must match the file name '{path.name}'."
        raise ValidationError(f"Invalid {what} file {path}: {key}", {key: [message]})
    return loaded


def _json_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise NotFoundError(f"Catalogue folder {folder} does not exist", folder=str(folder))
    return sorted(folder.glob("*.json"))


def load_forms(folder: Path) -> dict[str, dict[str, Any]]:
    """Load every ``<id>.json`` form definition in ``folder``; return them by id.

    Raises:
        ValidationError: a file is not valid JSON or not a valid form (message names the file).
        NotFoundError: the folder does not exist.
    """
    forms: dict[str, dict[str, Any]] = {}
    for path in _json_files(folder):
        form = _load_file(FormSchema(), path, "form", "id")
        forms[form["id"]] = form
    return forms


def load_workflow_forms(workflows_dir: Path) -> dict[str, dict[str, Any]]:
    """Return every form of a workflows folder by id: the declaration forms (``forms/``) and the forms of the
    officials' tasks (``task_forms/``, named by the tasks' ``formKey``); a missing folder gives no forms.

    Raises:
        ValidationError: a file is invalid, or a task form reuses the id of a declaration form.
    """
    folders = [workflows_dir / "forms", workflows_dir / "task_forms"]
    declared, tasks = (load_forms(folder) if folder.is_dir() else {} for folder in folders)
    reused = sorted(set(declared) & set(tasks))
    if reused:
        message = f"Task forms may not reuse declaration form ids: {', '.join(reused)}"
        raise ValidationError(message, {"id": [message]})
    return {**declared, **tasks}


def load_procedures(folder: Path, forms: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Load every ``<code>.json`` procedure in ``folder``, checking form references against ``forms``.

    Returns the procedures sorted by code, with defaults filled in (``bpmn``, ``delivery_methods`` and so on).

    Raises:
        ValidationError: a file is invalid; ``errors`` maps field paths such as ``fees.0.mode`` to messages.
        NotFoundError: the folder does not exist.
    """
    schema = ProcedureSchema(known_forms=set(forms))
    procedures = [_load_file(schema, path, "procedure", "code") for path in _json_files(folder)]
    return sorted(procedures, key=lambda procedure: procedure["code"])


def dump_procedure(procedure: Mapping[str, Any]) -> dict[str, Any]:
    """Return a loaded procedure as JSON-able data (amounts as strings, dates in ISO format)."""
    dumped: dict[str, Any] = ProcedureSchema().dump(procedure)
    return dumped
