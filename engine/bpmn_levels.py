"""Conformance of a dossier process to the service level it claims (workflows/CONVENTIONS.md).

A level's process is the top process plus every process it calls (``callActivity calledElement``),
followed through the given documents and, failing those, through ``resolve_missing``
(``engine/bpmn_tree.py``).  Each level has a table of small rules (``engine/bpmn_level_rules.py``); a rule
looks at the elements of that whole tree and returns a :class:`~engine.bpmn.Problem` for what is missing.
Problems about a missing element point at the top process (file, line, id); problems about a wrong element
(a level-1 process that processes, a call whose target is missing) point at that element.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.bpmn import Problem, Resolver
from engine.bpmn_level_rules import LEVELS, RULES
from engine.bpmn_tree import ProcessCatalog, ProcessTree, add_process, follow_calls, top_process
from engine.errors import DefinitionError
from engine.xml_safety import BpmnDocument, read_bpmn_document


def check_level(
    documents: Sequence[tuple[str, bytes]],
    level: int,
    *,
    process_key: str | None = None,
    resolve_missing: Resolver | None = None,
) -> list[Problem]:
    """Report what a dossier process lacks (or has too much of) for service level ``level``.

    Args:
        documents: ``(filename, xml)`` pairs: the level's process and, normally, its fragments.
        level: 1 to 4 (Circular 26/2009/TT-BTTTT).
        process_key: the process to check; default ``dossier_l<level>``, else the only process whose id
            does not start with ``frag_``.
        resolve_missing: given a process id, returns ``(filename, xml)`` of the deployed document that
            defines it, or None; asked for called processes that are in none of ``documents``.

    Returns:
        The problems; empty when the process conforms.  Unreadable documents and calls of processes that
        cannot be found are reported too, since what they would add cannot be checked.
    """
    if level not in RULES:
        return [
            Problem(
                None, None, process_key, f"unknown level {level!r}; levels are {', '.join(map(str, LEVELS))}"
            )
        ]
    problems: list[Problem] = []
    docs: list[BpmnDocument] = []
    for name, xml in documents:
        try:
            docs.append(read_bpmn_document(name, xml))
        except DefinitionError as err:
            problems.append(Problem.from_error(err))
    catalog = ProcessCatalog(docs, resolve_missing)
    top = top_process(catalog, level, process_key)
    if isinstance(top, Problem):
        return [*problems, *catalog.problems, top]
    tree = ProcessTree(level, *top)
    add_process(tree, *top)
    problems += follow_calls(tree, catalog)
    problems += catalog.problems
    for rule in RULES[level]:
        problems += rule(tree)
    return problems


__all__ = ["LEVELS", "RULES", "Problem", "check_level"]
