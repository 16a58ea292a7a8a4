"""Every BPMN shipped under workflows/bpmn parses, validates and lints clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bpmn import load_documents
from engine.bpmn_lint import lint_documents
from engine.sandbox import check_script
from handlers import default_registry

BUNDLED = sorted((Path(__file__).resolve().parents[2] / "workflows" / "bpmn").rglob("*.bpmn"))


@pytest.mark.skipif(not BUNDLED, reason="no BPMN is bundled yet")
def test_every_bundled_bpmn_loads_and_lints_clean():
    documents = [(str(path), path.read_bytes()) for path in BUNDLED]
    assert load_documents(documents)
    problems = lint_documents(
        documents, known_operators=list(default_registry()), check_expression=check_script
    )
    assert [p.to_dict() for p in problems] == []
