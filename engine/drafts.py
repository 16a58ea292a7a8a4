"""Drafts of process definitions: an analyst's unfinished BPMN, kept on the server until it is deployed.

There is one draft per process key and analyst (``owner``): two analysts editing the same process never
overwrite each other's work, and saving again replaces one's own draft.  A draft is checked only for being
safe, well-formed BPMN (the hardened parser of deployments: no DTD, no entities, no network, a size cap)
that defines the process of its key; it may be unfinished in every other way.  A draft is never run and
never becomes a version by itself: only ``Engine.deploy`` makes versions, with all its checks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from . import tables as t
from .errors import NotFoundError, ValidationError
from .runtime import Clock
from .store import Store
from .xml_safety import BPMN_NS, MAX_DOCUMENT_BYTES, parse_xml, to_bytes

#: Largest draft accepted, in bytes: the same cap as a deployed document.
MAX_DRAFT_BYTES = MAX_DOCUMENT_BYTES
#: A process id usable as a key: an XML name without a colon, at most 200 characters (the column).
KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,199}")
_SUMMARY = [c for c in t.definition_drafts.c if c.name not in ("id", "xml")]


def _summary(row: Any, size: int) -> dict[str, Any]:
    """Return a draft row's summary (no XML) with the XML's ``size`` in bytes."""
    return {**{column.name: getattr(row, column.name) for column in _SUMMARY}, "size": size}


def _upsert(conn: Connection, values: dict[str, Any]) -> Any:
    """Insert the draft of (key, owner) or replace its content; return its summary row."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    table = t.definition_drafts
    changed = {name: values[name] for name in ("name", "base_version", "sha256", "xml", "updated_at")}
    statement = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_update(index_elements=["key", "owner"], set_=changed)
        .returning(*_SUMMARY)
    )
    return conn.execute(statement).one()


def _check_document(key: str, xml: bytes | str) -> tuple[bytes, str | None]:
    """Return the draft's bytes and its process name, after the safety and shape checks.

    Raises:
        ValidationError: the key is not a process id, or the document is not UTF-8.
        DefinitionError: the document is too large, unsafe or not well-formed XML.
    """
    if not KEY_PATTERN.fullmatch(key):
        raise ValidationError(
            "A process key is a BPMN id: a letter or _, then letters, digits, _ . or -, at most 200",
            {"key": ["not a process id"]},
        )
    filename = f"{key}.bpmn"
    data = to_bytes(xml, filename)
    root = parse_xml(data, filename)  # refuses DTDs, entities, oversized and malformed documents
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("A draft must be UTF-8", {"xml": ["not UTF-8"]}) from None
    if root.tag != f"{{{BPMN_NS}}}definitions":
        raise ValidationError("A draft is a BPMN document (bpmn:definitions)", {"xml": ["not BPMN"]})
    processes = [p for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("id") == key]
    if not processes:
        raise ValidationError(
            f"The draft defines no process with the id '{key}'", {"xml": [f"no bpmn:process id='{key}'"]}
        )
    name = processes[0].get("name")
    return data, name[:500] if name else None


class Drafts:
    """The analysts' drafts, in the engine's database.

    Args:
        store: the database.
        clock: stamps saves.
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def save(
        self, key: str, owner: str, xml: bytes | str, *, base_version: int | None = None
    ) -> dict[str, Any]:
        """Create or replace ``owner``'s draft of process ``key``.

        Args:
            key: the process id; the document must define a ``bpmn:process`` with this id.
            owner: the analyst saving it.
            xml: the BPMN document (a ``str`` is encoded as UTF-8).
            base_version: the deployed version the draft started from, if any.

        Returns:
            The draft's summary: key, owner, name, base_version, sha256, size, created_at, updated_at.

        Raises:
            ValidationError: bad key, not UTF-8, not BPMN, or no process ``key`` in it.
            DefinitionError: too large, unsafe or not well-formed XML.
        """
        data, name = _check_document(key, xml)
        now = self.clock.now()
        values = {
            "key": key,
            "owner": owner,
            "name": name,
            "base_version": base_version,
            "sha256": hashlib.sha256(data).hexdigest(),
            "xml": data,
            "created_at": now,
            "updated_at": now,
        }
        with self.store.unit_of_work() as uow:
            row = _upsert(uow.conn, values)
        return _summary(row, len(data))

    def get(self, key: str, owner: str) -> dict[str, Any]:
        """Return ``owner``'s draft of ``key`` with its XML as text (``xml``).

        Raises:
            NotFoundError: that analyst has no draft of that process.
        """
        table = t.definition_drafts
        query = select(*_SUMMARY, table.c.xml).where(table.c.key == key, table.c.owner == owner)
        with self.store.unit_of_work(write=False) as uow:
            row = uow.conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"No draft of '{key}'", key=key)
        xml = bytes(row.xml)
        return {**_summary(row, len(xml)), "xml": xml.decode("utf-8")}

    def delete(self, key: str, owner: str) -> None:
        """Throw away ``owner``'s draft of ``key``.

        Raises:
            NotFoundError: there was none.
        """
        table = t.definition_drafts
        with self.store.unit_of_work() as uow:
            gone = uow.conn.execute(delete(table).where(table.c.key == key, table.c.owner == owner))
        if not gone.rowcount:
            raise NotFoundError(f"No draft of '{key}'", key=key)

    def list(self, owner: str) -> Sequence[dict[str, Any]]:
        """Return ``owner``'s drafts (summaries, no XML), the most recently saved first."""
        table = t.definition_drafts
        query = (
            select(*_SUMMARY, func.length(table.c.xml).label("size"))
            .where(table.c.owner == owner)
            .order_by(table.c.updated_at.desc(), table.c.key)
        )
        with self.store.unit_of_work(write=False) as uow:
            return [_summary(row, int(row.size)) for row in uow.conn.execute(query)]
