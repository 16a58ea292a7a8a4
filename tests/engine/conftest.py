"""Engine test helpers: the BPMN fixtures under tests/data/engine, the bundled processes' handlers, and a
state dump without the fragment cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.state import StateCodec
from handlers import HandlerRegistry, default_registry
from handlers.dossier_ops import HANDLERS as DOSSIER_HANDLERS

ENGINE_DATA = Path(__file__).resolve().parent.parent / "data" / "engine"


def bpmn_file(name: str) -> tuple[str, bytes]:
    """Return (file name, bytes) of a BPMN fixture under tests/data/engine."""
    path = ENGINE_DATA / name
    return (path.name, path.read_bytes())


def dossier_registry() -> HandlerRegistry:
    """The default handlers plus the ones the bundled dossier processes call."""
    registry = default_registry()
    for operator, handler in DOSSIER_HANDLERS.items():
        registry.register(operator, handler)
    return registry


def fresh_dump(codec: StateCodec, workflow: Any) -> str:
    """Serialize a workflow without the fragment cache: every task converted again."""
    saved = workflow.__dict__.pop("_motcua_fragments", None)
    try:
        return codec.dumps(workflow)
    finally:
        if saved is not None:
            workflow._motcua_fragments = saved
