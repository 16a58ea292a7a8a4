"""Engine test helpers: the BPMN fixtures under tests/data/engine."""

from __future__ import annotations

from pathlib import Path

ENGINE_DATA = Path(__file__).resolve().parent.parent / "data" / "engine"


def bpmn_file(name: str) -> tuple[str, bytes]:
    """Return (file name, bytes) of a BPMN fixture under tests/data/engine."""
    path = ENGINE_DATA / name
    return (path.name, path.read_bytes())
