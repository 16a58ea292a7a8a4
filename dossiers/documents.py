"""The official documents of a dossier (Circular 01/2018/TT-VPCP forms 01-06), built from its stored state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.errors import ConflictError
from handlers.documents import render_document

from .status import Status

_ROLES = {"reception": "desk", "specialist": "specialist", "leader": "leader", "applicant": "applicant"}
_CHANNELS = {1: "in_person", 2: "online", 3: "post"}

# Which documents exist at which point of a dossier's life.
_AVAILABLE = {
    "receipt": lambda d: d["received_at"] is not None,
    "supplement_request": lambda d: bool(d["supplement_items"]),
    "refusal": lambda d: d["status"] == Status.NOT_RECEIVED,
    "apology": lambda d: d["apology"] is not None,
    "control_slip": lambda d: True,
    "dossier_log": lambda d: True,
}


def _components(procedure: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for component in procedure.get("components") or ():
        copies = component.get("copies") or {}
        for original, count in ((True, copies.get("original", 0)), (False, copies.get("copy", 0))):
            if count:
                rows.append({"name": component["name"], "copies": count, "original": original})
    return rows


def _handovers(dossier: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "at": h["at"],
            "from_role": _ROLES.get(h["from_role"] or "", h["from_role"]),
            "to_role": _ROLES.get(h["to_role"] or "", h["to_role"]),
            "actor": h["actor"],
            "result": h["result"],
            "note": h["note"],
        }
        for h in dossier.get("handovers") or ()
    ]


def document_data(
    dossier: Mapping[str, Any], procedure: Mapping[str, Any], process_data: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Return what the document renderer needs about one dossier (see ``handlers.documents``)."""
    apology = dossier.get("apology")
    return {
        "code": dossier["code"],
        "issued_at": now,
        "procedure": {
            "code": procedure.get("code"),
            "name": procedure.get("name"),
            "agency": procedure.get("agency") or {},
        },
        "applicant": dossier.get("applicant") or {},
        "channel": _CHANNELS.get(dossier.get("channel") or 0),
        "received_at": dossier.get("received_at"),
        "due_at": dossier.get("due_at"),
        "components": _components(procedure),
        "fees": [
            {"description": f.get("description"), "amount": f.get("amount")}
            for f in process_data.get("fees") or ()
            if f.get("amount") is not None
        ],
        "supplement_items": dossier.get("supplement_items") or [],
        "refusal_reason": dossier.get("refusal_reason"),
        "apology": (
            {"reason": apology["reason"], "new_due_at": datetime.fromisoformat(apology["new_due_at"])}
            if apology
            else None
        ),
        "handovers": _handovers(dossier),
    }


def render(
    kind: str,
    dossier: Mapping[str, Any],
    procedure: Mapping[str, Any],
    process_data: Mapping[str, Any],
    now: datetime,
) -> bytes:
    """Render one document of a dossier as PDF.

    Raises:
        ConflictError: the document does not exist yet at this point of the dossier's life.
        ValidationError: unknown kind (from the renderer).
    """
    available = _AVAILABLE.get(kind)
    if available is not None and not available(dossier):
        raise ConflictError(f"Dossier {dossier['code']} has no {kind} document at this stage", kind=kind)
    return render_document(kind, document_data(dossier, procedure, process_data, now))
