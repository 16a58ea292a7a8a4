"""The workflows bundled with motcua: BPMN under workflows/bpmn, procedures and forms beside them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.errors import DefinitionError
from engine.xml_safety import read_bpmn_document


def bundled_bpmn(folder: Path) -> list[tuple[str, bytes]]:
    """Return (path, bytes) of every BPMN file under ``folder``/bpmn, fragments first."""
    files = sorted((folder / "bpmn").rglob("*.bpmn"), key=lambda p: ("fragments" not in p.parts, str(p)))
    return [(str(path), path.read_bytes()) for path in files]


def bundle_resolver(folder: Path) -> Callable[[str], tuple[str, bytes] | None]:
    """Return a lookup of bundled BPMN documents by the process ids they define."""
    index: dict[str, tuple[str, bytes]] = {}
    for name, xml in bundled_bpmn(folder):
        try:
            document = read_bpmn_document(name, xml)
        except DefinitionError:
            continue  # a broken bundled file is reported when it is linted itself
        for process in document.processes:
            index.setdefault(process.get("id"), (name, xml))
    return index.get
