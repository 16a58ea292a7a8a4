"""The tree a level check looks at: a dossier process and every process it calls, flattened.

``engine/bpmn_levels.py`` builds a :class:`ProcessTree` from the top process, follows its call activities
through a :class:`ProcessCatalog` (the given documents, then ``resolve_missing``), and runs the level's rules
(``engine/bpmn_level_rules.py``) over its elements and sequence-flow graphs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from engine.bpmn import Problem, Resolver
from engine.errors import DefinitionError
from engine.xml_safety import BPMN_NS, SPIFF_NS, BpmnDocument, read_bpmn_document

FRAGMENT_PREFIX = "frag_"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
_PROPERTY = "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
_NOT_FLOW_NODES = frozenset(
    {"lane", "laneSet", "sequenceFlow", "textAnnotation", "association", "dataObject"}
)


@dataclass(frozen=True)
class FlowElement:
    """One flow element of the checked tree, with what the rules look at."""

    doc: BpmnDocument
    process_id: str
    node: Any
    kind: str
    lane: str | None
    properties: dict[str, str]

    @property
    def id(self) -> str:
        return str(self.node.get("id"))

    @property
    def role(self) -> str | None:
        return self.properties.get("role")

    def problem(self, message: str) -> Problem:
        return Problem(self.doc.name, self.node.sourceline, self.id, message)


@dataclass
class ProcessTree:
    """The top process and everything it calls, flattened into elements and sequence-flow graphs."""

    level: int
    doc: BpmnDocument
    process: Any
    elements: list[FlowElement] = field(default_factory=list)
    following: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # process id -> graph

    def problem(self, message: str) -> Problem:
        return Problem(self.doc.name, self.process.sourceline, self.process.get("id"), message)

    def with_role(self, role: str) -> list[FlowElement]:
        return [element for element in self.elements if element.role == role]


def _lanes(process: Any) -> dict[str, str | None]:
    """Map flow node ids to the name of their (innermost) lane."""
    lanes: dict[str, str | None] = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            if ref.text:
                lanes[ref.text.strip()] = lane.get("name")
    return lanes


def properties_of(node: Any) -> dict[str, str]:
    """Return an element's spiffworkflow extension properties, by name."""
    return {
        prop.get("name"): prop.get("value", "") for prop in node.findall(_PROPERTY, NS) if prop.get("name")
    }


def add_process(tree: ProcessTree, doc: BpmnDocument, process: Any) -> None:
    """Add a process's flow elements to the tree, and its sequence flows and boundary events to its graph."""
    process_id = process.get("id")
    lanes = _lanes(process)
    graph = tree.following.setdefault(process_id, {})
    for node in process.iter(etree.Element):
        if etree.QName(node).namespace != BPMN_NS or not node.get("id"):
            continue
        kind = etree.QName(node).localname
        if kind == "sequenceFlow":
            graph.setdefault(node.get("sourceRef"), []).append(node.get("targetRef"))
            continue
        if kind == "boundaryEvent":
            graph.setdefault(node.get("attachedToRef"), []).append(node.get("id"))
        if kind in _NOT_FLOW_NODES or kind.endswith("EventDefinition"):
            continue
        tree.elements.append(
            FlowElement(doc, process_id, node, kind, lanes.get(node.get("id")), properties_of(node))
        )


class ProcessCatalog:
    """Processes by id: those of the given documents, then those ``resolve_missing`` fetches."""

    def __init__(self, documents: Iterable[BpmnDocument], resolve_missing: Resolver | None) -> None:
        self.resolve_missing = resolve_missing
        self.processes: dict[str, tuple[BpmnDocument, Any]] = {}
        self.problems: list[Problem] = []
        self.names: set[str] = set()
        for doc in documents:
            self._index(doc)

    def _index(self, doc: BpmnDocument) -> None:
        self.names.add(doc.name)
        for process in doc.processes:
            self.processes.setdefault(process.get("id"), (doc, process))

    def find(self, process_id: str) -> tuple[BpmnDocument, Any] | None:
        """Return the document and element of a process, fetching it through ``resolve_missing`` if need be.

        A fetched document that cannot be read adds a problem to ``problems`` and finds nothing.
        """
        if process_id not in self.processes and self.resolve_missing is not None:
            fetched = self.resolve_missing(process_id)
            if fetched is not None:
                name = fetched[0] if fetched[0] not in self.names else f"{fetched[0]} (deployed)"
                try:
                    self._index(read_bpmn_document(name, fetched[1]))
                except DefinitionError as err:
                    self.problems.append(Problem.from_error(err))
        return self.processes.get(process_id)


def follow_calls(tree: ProcessTree, catalog: ProcessCatalog) -> list[Problem]:
    """Add every process the tree calls, transitively; return a problem per call that finds nothing."""
    problems: list[Problem] = []
    done = {tree.process.get("id")}
    index = 0
    while index < len(tree.elements):
        element = tree.elements[index]
        index += 1
        called = (element.node.get("calledElement") or "").strip()
        if element.kind != "callActivity" or not called or called in done:
            continue
        found = catalog.find(called)
        if found is None:
            problems.append(
                element.problem(
                    f"call activity '{element.id}' calls process '{called}', which is neither in these "
                    "documents nor deployed, so the elements it would add cannot be checked"
                )
            )
            continue
        done.add(called)
        add_process(tree, *found)
    return problems


def top_process(
    catalog: ProcessCatalog, level: int, process_key: str | None
) -> tuple[BpmnDocument, Any] | Problem:
    """Return the process to check: ``process_key``, else ``dossier_l<level>``, else the only non-fragment.

    Returns a :class:`Problem` instead when there is no such process, or no way to tell which one.
    """
    if process_key is not None:
        found = catalog.find(process_key)
        return found or Problem(None, None, process_key, f"no process '{process_key}' in the documents")
    conventional = catalog.processes.get(f"dossier_l{level}")
    if conventional is not None:
        return conventional
    candidates = [key for key in catalog.processes if not key.startswith(FRAGMENT_PREFIX)]
    if len(candidates) == 1:
        return catalog.processes[candidates[0]]
    if not candidates:
        return Problem(None, None, None, f"no process to check: no 'dossier_l{level}' and only fragments")
    return Problem(
        None,
        None,
        None,
        f"cannot tell which process to check against level {level}: no 'dossier_l{level}' among "
        f"{', '.join(sorted(candidates))}; give the process key",
    )
