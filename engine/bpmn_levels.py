"""Conformance of a dossier process to the service level it claims (workflows/CONVENTIONS.md).

A level's process is the top process plus every process it calls (``callActivity calledElement``),
followed through the given documents and, failing those, through ``resolve_missing``.  Each level has a
table of small rules; a rule looks at the elements of that whole tree (their ``role`` property, lane,
kind, formKey, operator, message, timer) and returns a :class:`~engine.bpmn.Problem` for what is missing.
Problems about a missing element point at the top process (file, line, id); problems about a wrong element
(a level-1 process that processes, a call whose target is missing) point at that element.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from engine.bpmn import Problem, Resolver
from engine.errors import DefinitionError
from engine.xml_safety import BPMN_NS, SPIFF_NS, BpmnDocument, read_bpmn_document

LEVELS = (1, 2, 3, 4)
FRAGMENT_PREFIX = "frag_"
_NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
_PROPERTY = "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
_TASKS = ("manualTask", "userTask", "task")
_NOT_FLOW_NODES = frozenset(
    {"lane", "laneSet", "sequenceFlow", "textAnnotation", "association", "dataObject"}
)


@dataclass(frozen=True)
class _Element:
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
class _Tree:
    """The top process and everything it calls, flattened into elements and sequence-flow graphs."""

    level: int
    doc: BpmnDocument
    process: Any
    elements: list[_Element] = field(default_factory=list)
    following: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # process id -> graph

    def problem(self, message: str) -> Problem:
        return Problem(self.doc.name, self.process.sourceline, self.process.get("id"), message)

    def with_role(self, role: str) -> list[_Element]:
        return [element for element in self.elements if element.role == role]


Rule = Callable[[_Tree], list[Problem]]


# -- conditions an element with a role must meet ----------------------------------------------------


@dataclass(frozen=True)
class _Condition:
    """What an element must be (``text``), a test, and what it is instead (for near misses)."""

    text: str
    holds: Callable[[_Element], bool]
    actual: Callable[[_Element], str]


def _a(word: str) -> str:
    """Return ``word`` with its article: "a userTask", "an endEvent"."""
    return f"{'an' if word[:1] in ('a', 'e', 'i', 'o') else 'a'} {word}"


def _kind(*kinds: str) -> _Condition:
    return _Condition(_a(" or ".join(kinds)), lambda e: e.kind in kinds, lambda e: f"is {_a(e.kind)}")


def _lane(name: str) -> _Condition:
    return _Condition(
        f"in lane '{name}'",
        lambda e: e.lane == name,
        lambda e: f"is in lane '{e.lane}'" if e.lane else "is in no lane",
    )


def _form_key() -> _Condition:
    return _Condition(
        "has a formKey",
        lambda e: bool(e.properties.get("formKey", "").strip()),
        lambda e: "has no formKey",
    )


def _operator(prefix: str) -> _Condition:
    return _Condition(
        f"calls a '{prefix}*' operator",
        lambda e: _operator_of(e).startswith(prefix),
        lambda e: f"calls operator '{_operator_of(e)}'" if _operator_of(e) else "calls no operator",
    )


def _message(name: str) -> _Condition:
    return _Condition(
        f"catches message '{name}'",
        lambda e: name in _messages_of(e),
        lambda e: f"catches {', '.join(map(repr, _messages_of(e))) or 'no message'}",
    )


def _timer() -> _Condition:
    return _Condition(
        "waits on a timer",
        lambda e: e.node.find("bpmn:timerEventDefinition", _NS) is not None,
        lambda e: "has no timer",
    )


def _operator_of(element: _Element) -> str:
    operator = element.node.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", _NS)
    return (operator.get("id") or "").strip() if operator is not None else ""


def _messages_of(element: _Element) -> list[str]:
    names = {
        message.get("id"): message.get("name") for message in element.doc.root.iter(f"{{{BPMN_NS}}}message")
    }
    refs = [
        definition.get("messageRef")
        for definition in element.node.findall("bpmn:messageEventDefinition", _NS)
    ]
    refs.append(element.node.get("messageRef"))  # a receiveTask names its message itself
    return [names.get(ref) or ref for ref in refs if ref]


def _needs(role: str, what: str, kind: _Condition, *others: _Condition) -> Rule:
    """Rule: some element has ``role`` and meets every condition; else one problem naming all of them.

    Lane conditions read "in lane ..." and come right after the kind; the others follow "that".
    """
    conditions = (kind, *others)
    lanes = [c.text for c in others if c.text.startswith("in lane")]
    rest = [c.text for c in others if not c.text.startswith("in lane")]
    wanted = " ".join([kind.text, *lanes, f"with role '{role}'"])
    if rest:
        wanted += " that " + " and ".join(rest)

    def rule(tree: _Tree) -> list[Problem]:
        candidates = tree.with_role(role)
        if any(all(c.holds(e) for c in conditions) for e in candidates):
            return []
        misses = [
            f"'{e.id}' has that role but " + " and ".join(c.actual(e) for c in conditions if not c.holds(e))
            for e in candidates
        ]
        detail = f" ({'; '.join(misses)})" if misses else ""
        return [tree.problem(f"level {tree.level} needs {what}: {wanted}{detail}")]

    return rule


def _shaped(role: str, *conditions: _Condition) -> Rule:
    """Rule: every element that has ``role`` (none is required) meets the conditions; a problem per one that
    does not."""
    kind, *others = conditions
    lanes = [c.text for c in others if c.text.startswith("in lane")]
    rest = [c.text for c in others if not c.text.startswith("in lane")]
    wanted = " ".join([kind.text, *lanes]) + (" that " + " and ".join(rest) if rest else "")

    def rule(tree: _Tree) -> list[Problem]:
        return [
            element.problem(
                f"level {tree.level}: '{element.id}' has role '{role}' but "
                + " and ".join(c.actual(element) for c in conditions if not c.holds(element))
                + f"; it must be {wanted}"
            )
            for element in tree.with_role(role)
            if not all(c.holds(element) for c in conditions)
        ]

    return rule


def _keeps_status() -> _Condition:
    return _Condition(
        "sets no dossier_status",
        lambda e: "dossier_status" not in e.properties,
        lambda e: f"sets dossier_status {e.properties.get('dossier_status')}",
    )


def _non_interrupting() -> _Condition:
    return _Condition(
        "does not interrupt the task",
        lambda e: e.node.get("cancelActivity") == "false",
        lambda e: "interrupts the task (cancelActivity is not false)",
    )


def _attached_to(role: str) -> _Condition:
    def target_role(element: _Element) -> str | None:
        found = element.node.getparent().xpath("*[@id=$id]", id=element.node.get("attachedToRef") or "")
        return _properties(found[0]).get("role") if found else None

    return _Condition(
        f"is attached to the element with role '{role}'",
        lambda e: target_role(e) == role,
        lambda e: f"is attached to '{e.node.get('attachedToRef')}' (role {target_role(e)!r})",
    )


# A reception review left too long escalates to a leader, beside the dossier's path (CONVENTIONS.md).
_ESCALATION = (
    _shaped("review_deadline", _kind("boundaryEvent"), _timer(), _non_interrupting(), _attached_to("review")),
    _shaped("escalation", _kind("userTask"), _lane("leader"), _keeps_status()),
)


# -- rules that look at more than one element -----------------------------------------------------------

_SUPPLEMENT = (_kind("userTask"), _lane("applicant"))


def _reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    """Ids reachable from ``start`` by one or more steps (``start`` itself only through a loop)."""
    seen: set[str] = set()
    pending = list(graph.get(start, ()))
    while pending:
        node_id = pending.pop()
        if node_id not in seen:
            seen.add(node_id)
            pending.extend(graph.get(node_id, ()))
    return seen


def _supplement_loop(tree: _Tree) -> list[Problem]:
    """Rule: from a review, a path reaches an applicant's supplement task and from there the review again."""
    supplements = [e for e in tree.with_role("supplement") if all(c.holds(e) for c in _SUPPLEMENT)]
    for review in tree.with_role("review"):
        graph = tree.following.get(review.process_id, {})
        after_review = _reachable(graph, review.id)
        looping = [
            supplement
            for supplement in supplements
            if supplement.process_id == review.process_id
            and supplement.id in after_review
            and review.id in _reachable(graph, supplement.id)
        ]
        if looping:
            return []
    return [
        tree.problem(
            f"level {tree.level} needs an online supplement loop: a path from the review (role 'review') "
            "to a userTask in lane 'applicant' with role 'supplement', and from it back to the review"
        )
    ]


_INFORMATION_ROLES = frozenset({"information"})


def _information_only(tree: _Tree) -> list[Problem]:
    """Rule (level 1): nothing but information; every other role is processing."""
    return [
        element.problem(
            f"level {tree.level} is information only, but {element.kind} '{element.id}' has role "
            f"'{element.role}'"
        )
        for element in tree.elements
        if element.role and element.role not in _INFORMATION_ROLES
    ]


# -- the table --------------------------------------------------------------------------------------

_information = _needs(
    "information", "public information on the procedure", _kind(*_TASKS), _lane("applicant")
)
_LEVEL_3 = (
    *_ESCALATION,
    _information,
    _needs(
        "submission",
        "an applicant submission",
        _kind("userTask"),
        _lane("applicant"),
        _form_key(),
    ),
    _needs("review", "the reception desk's review", _kind("userTask"), _lane("reception")),
    _supplement_loop,
    _needs("refusal", "an end for a refused dossier", _kind("endEvent")),
    _needs("appraisal", "a specialist's appraisal", _kind("userTask"), _lane("specialist")),
    _needs("approval", "a leader's approval", _kind("userTask"), _lane("leader")),
)

RULES: dict[int, tuple[Rule, ...]] = {
    1: (_information, _information_only),
    2: (
        *_ESCALATION,
        _information,
        _needs("download", "the download of the blank forms", _kind("userTask"), _lane("applicant")),
        _needs(
            "paper_submission",
            "the desk's record of the paper dossier",
            _kind("userTask"),
            _lane("reception"),
        ),
    ),
    3: _LEVEL_3,
    4: (
        *_LEVEL_3,
        _needs("payment", "an online payment request", _kind("serviceTask"), _operator("payment.")),
        _needs(
            "payment_wait",
            "the wait for the payment",
            _kind("intermediateCatchEvent", "boundaryEvent", "receiveTask"),
            _message("payment.confirmed"),
        ),
        _needs(
            "payment_expiry",
            "an expiry of the payment request",
            _kind("intermediateCatchEvent", "boundaryEvent"),
            _timer(),
        ),
        _needs("delivery_online", "online delivery of the result", _kind("serviceTask", "sendTask", "task")),
        _needs("delivery_desk", "delivery of the result at the desk", _kind("userTask"), _lane("reception")),
        _needs("delivery_post", "delivery of the result by post", _kind("serviceTask", "sendTask", "task")),
    ),
}


# -- building the tree ------------------------------------------------------------------------------


def _lanes(process: Any) -> dict[str, str | None]:
    """Map flow node ids to the name of their (innermost) lane."""
    lanes: dict[str, str | None] = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.findall("bpmn:flowNodeRef", _NS):
            if ref.text:
                lanes[ref.text.strip()] = lane.get("name")
    return lanes


def _properties(node: Any) -> dict[str, str]:
    return {
        prop.get("name"): prop.get("value", "") for prop in node.findall(_PROPERTY, _NS) if prop.get("name")
    }


def _add_process(tree: _Tree, doc: BpmnDocument, process: Any) -> None:
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
            _Element(doc, process_id, node, kind, lanes.get(node.get("id")), _properties(node))
        )


class _Catalog:
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
        if process_id not in self.processes and self.resolve_missing is not None:
            fetched = self.resolve_missing(process_id)
            if fetched is not None:
                name = fetched[0] if fetched[0] not in self.names else f"{fetched[0]} (deployed)"
                try:
                    self._index(read_bpmn_document(name, fetched[1]))
                except DefinitionError as err:
                    self.problems.append(Problem.from_error(err))
        return self.processes.get(process_id)


def _follow_calls(tree: _Tree, catalog: _Catalog) -> list[Problem]:
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
        _add_process(tree, *found)
    return problems


def _top_process(
    catalog: _Catalog, level: int, process_key: str | None
) -> tuple[BpmnDocument, Any] | Problem:
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
    catalog = _Catalog(docs, resolve_missing)
    top = _top_process(catalog, level, process_key)
    if isinstance(top, Problem):
        return [*problems, *catalog.problems, top]
    tree = _Tree(level, *top)
    _add_process(tree, *top)
    problems += _follow_calls(tree, catalog)
    problems += catalog.problems
    for rule in RULES[level]:
        problems += rule(tree)
    return problems


__all__ = ["LEVELS", "RULES", "Problem", "check_level"]
