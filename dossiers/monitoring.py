"""Monitoring one process instance: who may watch it, its dossier, and the diagram versions it runs.

Watching an instance shows internal data (process variables, timers, the audit trail), so it is for the
officials of the dossier's agency, analysts and admins; never for applicants, not even of their own dossier
(they have the dossier's page).  As in ``access.py``, an official refused an instance of another agency is
told it does not exist, so that instance ids cannot be probed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from engine.errors import ForbiddenError, NotFoundError
from engine.facade import Engine
from engine.tables import definitions

from . import store
from .access import OFFICIAL_LANES, Caller
from .status import describe
from .tables import dossiers

# A process variable whose JSON is larger than this is not sent whole (attachments' text, big lists).
DATA_VALUE_LIMIT = 16 * 1024
DATA_LIMIT = 256 * 1024


def dossier_of_instance(conn: Connection, instance_id: str) -> dict[str, Any] | None:
    """Return the dossier an instance runs, or None when it runs none (e.g. started by an integrator)."""
    row = conn.execute(select(dossiers).where(dossiers.c.instance_id == instance_id)).first()
    return store.decode(row) if row is not None else None


def check_monitor(caller: Caller, instance_id: str, dossier: Mapping[str, Any] | None) -> None:
    """Raise unless ``caller`` may watch instance ``instance_id`` (of ``dossier``, if it runs one).

    Raises:
        ForbiddenError: the caller is neither an official, an analyst nor an admin.
        NotFoundError: an official, and the instance runs no dossier of the official's agency.
    """
    if caller.has("analyst", "admin"):
        return
    if not caller.has(*OFFICIAL_LANES):
        raise ForbiddenError("Monitoring an instance is for officials, analysts and admins")
    if dossier is None or dossier["agency_code"] != caller.agency_code:
        raise NotFoundError(f"Instance {instance_id} does not exist", instance_id=instance_id)


def diagram_versions(
    conn: Connection, definition_id: int, process_keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Return the deployed version of each process an instance draws: ``{key: {"id", "version"}}``.

    The main process is the instance's own definition.  A called process was bound when the main one was
    deployed: to its version deployed with it or the latest one before it (``Definitions.deploy``), so it
    is the latest version whose id is not above the main definition's; when the called process was first
    deployed in the same upload after the main one, its first version.  One query for all of them.
    """
    d = definitions.c
    main = conn.execute(select(d.id, d.key, d.version).where(d.id == definition_id)).one()
    keys = sorted(set(process_keys) - {main.key})
    found: dict[str, dict[str, Any]] = {main.key: {"id": main.id, "version": main.version}}
    rows = conn.execute(select(d.id, d.key, d.version).where(d.key.in_(keys)).order_by(d.key, d.id)).all()
    for row in rows:
        earlier = row.id <= main.id
        if row.key not in found or earlier:
            found[row.key] = {"id": row.id, "version": row.version}
    return found


def definition_xml(conn: Connection, definition_id: int) -> bytes:
    """Return the BPMN XML of a definition version, byte for byte.

    Raises:
        NotFoundError: no such definition.
    """
    xml = conn.execute(select(definitions.c.xml).where(definitions.c.id == definition_id)).scalar()
    if xml is None:
        raise NotFoundError(f"Definition {definition_id} does not exist")
    return bytes(xml)


def instance_report(engine: Engine, caller: Caller, instance_id: str) -> dict[str, Any]:
    """Return what monitoring shows of an instance: ``Engine.show`` with its dossier, the version of each
    diagram, each timer's process, and the data capped (``capped_data``).

    Raises:
        ForbiddenError, NotFoundError: as ``check_monitor``; NotFoundError also for no such instance.
    """
    view, dossier, versions = _watched(engine, caller, instance_id)
    drawn_in = {element: p["process_key"] for p in reversed(view["processes"]) for element in p["active"]}
    data, truncated = capped_data(view["data"])
    return {
        **view,
        "definition": {"key": view["process_key"], "version": versions[view["process_key"]]["version"]},
        "dossier": _dossier_summary(dossier),
        "processes": [
            {**p, "version": versions.get(p["process_key"], {}).get("version")} for p in view["processes"]
        ],
        "timers": [{**t, "process_key": drawn_in.get(t["element_id"])} for t in view["timers"]],
        "data": data,
        "data_truncated": truncated,
    }


def instance_diagram(engine: Engine, caller: Caller, instance_id: str, process_key: str) -> bytes:
    """Return the BPMN XML of one process an instance draws (its main process or a called one).

    Raises:
        ForbiddenError, NotFoundError: as ``instance_report``; NotFoundError also when the instance never
            ran ``process_key``.
    """
    _, _, versions = _watched(engine, caller, instance_id)
    if process_key not in versions:
        raise NotFoundError(
            f"Instance {instance_id} runs no process '{process_key}'", process_key=process_key
        )
    with engine.store.unit_of_work(write=False) as uow:
        return definition_xml(uow.conn, versions[process_key]["id"])


def _watched(
    engine: Engine, caller: Caller, instance_id: str
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The access check, then the instance's view, its dossier and its diagrams' versions."""
    with engine.store.unit_of_work(write=False) as uow:
        dossier = dossier_of_instance(uow.conn, instance_id)
    check_monitor(caller, instance_id, dossier)
    view = engine.show(instance_id)
    keys = [p["process_key"] for p in view["processes"]]
    with engine.store.unit_of_work(write=False) as uow:
        versions = diagram_versions(uow.conn, view["definition_id"], keys)
    return view, dossier, versions


def _dossier_summary(dossier: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if dossier is None:
        return None
    keys = ("code", "procedure_code", "agency_code", "level", "submitted_at", "received_at", "due_at")
    return {**{key: dossier[key] for key in keys}, "status": describe(dossier["status"])}


def capped_data(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Return process data as JSON values, with variables too large to show replaced by a marker.

    A variable whose JSON exceeds ``DATA_VALUE_LIMIT`` bytes, or any once ``DATA_LIMIT`` bytes were
    shown, becomes ``{"truncated": true, "bytes": n}``.  Dates become ISO 8601 text, amounts text.

    Returns:
        (the data, the names of the variables replaced).
    """
    shown: dict[str, Any] = {}
    truncated: list[str] = []
    used = 0
    for name, value in data.items():
        text = json.dumps(value, ensure_ascii=False, default=_json_default)
        size = len(text.encode())
        if size > DATA_VALUE_LIMIT or used + size > DATA_LIMIT:
            shown[name] = {"truncated": True, "bytes": size}
            truncated.append(name)
            continue
        shown[name] = json.loads(text)
        used += size
    return shown, truncated


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
