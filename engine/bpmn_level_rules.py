"""The rules of each service level (workflows/CONVENTIONS.md): what a level's process tree must contain.

Each level has a table of small rules (:data:`RULES`); a rule looks at the elements of the whole tree
(``engine/bpmn_tree.py``: their ``role`` property, lane, kind, formKey, operator, message, timer) and returns
a :class:`~engine.bpmn.Problem` for what is missing.  Problems about a missing element point at the top
process; problems about a wrong element (a level-1 process that processes) point at that element.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.bpmn import Problem
from engine.bpmn_tree import NS, FlowElement, ProcessTree, properties_of
from engine.xml_safety import BPMN_NS

LEVELS = (1, 2, 3, 4)
_TASKS = ("manualTask", "userTask", "task")

Rule = Callable[[ProcessTree], list[Problem]]


# -- conditions an element with a role must meet ----------------------------------------------------


@dataclass(frozen=True)
class _Condition:
    """What an element must be (``text``), a test, and what it is instead (for near misses)."""

    text: str
    holds: Callable[[FlowElement], bool]
    actual: Callable[[FlowElement], str]


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
        lambda e: e.node.find("bpmn:timerEventDefinition", NS) is not None,
        lambda e: "has no timer",
    )


def _operator_of(element: FlowElement) -> str:
    operator = element.node.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
    return (operator.get("id") or "").strip() if operator is not None else ""


def _messages_of(element: FlowElement) -> list[str]:
    names = {
        message.get("id"): message.get("name") for message in element.doc.root.iter(f"{{{BPMN_NS}}}message")
    }
    refs = [
        definition.get("messageRef") for definition in element.node.findall("bpmn:messageEventDefinition", NS)
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

    def rule(tree: ProcessTree) -> list[Problem]:
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

    def rule(tree: ProcessTree) -> list[Problem]:
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
    def target_role(element: FlowElement) -> str | None:
        found = element.node.getparent().xpath("*[@id=$id]", id=element.node.get("attachedToRef") or "")
        return properties_of(found[0]).get("role") if found else None

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


def _supplement_loop(tree: ProcessTree) -> list[Problem]:
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


def _information_only(tree: ProcessTree) -> list[Problem]:
    """Rule (level 1): nothing but information; every other role is processing."""
    return [
        element.problem(
            f"level {tree.level} is information only, but {element.kind} '{element.id}' has role "
            f"'{element.role}'"
        )
        for element in tree.elements
        if element.role and element.role not in _INFORMATION_ROLES
    ]


def _leads_to(source_role: str, target_role: str, what: str) -> Rule:
    """Rule: every element with ``source_role`` has a path to an element with ``target_role`` in its process.

    Elements that are missing are reported by the ``_needs`` rules, not here.
    """

    def rule(tree: ProcessTree) -> list[Problem]:
        targets = tree.with_role(target_role)
        problems = []
        for source in tree.with_role(source_role):
            reachable = _reachable(tree.following.get(source.process_id, {}), source.id)
            if targets and not any(t.process_id == source.process_id and t.id in reachable for t in targets):
                problems.append(
                    source.problem(
                        f"level {tree.level}: from '{source.id}' (role '{source_role}') no path reaches "
                        f"the element with role '{target_role}': {what}"
                    )
                )
        return problems

    return rule


_WAITS = ("intermediateCatchEvent", "boundaryEvent", "receiveTask")
# The result is delivered (status 10) only once the applicant has it: the online result waits for its first
# download, the post for the delivery report, and a cancelled postal delivery goes back to the desk.
_DELIVERY = (
    _needs("delivery_online", "online delivery of the result", _kind("serviceTask", "sendTask", "task")),
    _needs(
        "delivery_online_wait",
        "the wait until the applicant collects the electronic result",
        _kind(*_WAITS),
        _message("result.collected"),
    ),
    _leads_to("delivery_online", "delivery_online_wait", "the result must be collected before it counts"),
    _needs("delivery_desk", "delivery of the result at the desk", _kind("userTask"), _lane("reception")),
    _needs("delivery_post", "delivery of the result by post", _kind("serviceTask", "sendTask", "task")),
    _needs(
        "delivery_post_wait", "the wait for the postal delivery", _kind(*_WAITS), _message("post.delivered")
    ),
    _leads_to("delivery_post", "delivery_post_wait", "the post must report the delivery"),
    _needs(
        "delivery_post_cancelled",
        "the cancellation of the postal delivery",
        _kind("boundaryEvent", "intermediateCatchEvent"),
        _message("post.cancelled"),
    ),
    _leads_to(
        "delivery_post_cancelled", "delivery_desk", "a cancelled postal delivery is handed over at the desk"
    ),
)


# The national statuses that end a dossier's processing: 3 not received, 7 withdrawn, 8 stopped, 10 result
# returned (dossiers.status.FINAL).  They belong on end events only: the officials' queues leave dossiers in
# these statuses out (that is what lets them read only the live dossiers' indexes), so a waiting task that set
# one would vanish from every queue.
FINAL_STATUSES = frozenset({"3", "7", "8", "10"})


def _final_status_at_ends(tree: ProcessTree) -> list[Problem]:
    return [
        element.problem(
            f"'{element.id}' sets the final dossier_status {element.properties['dossier_status'].strip()} "
            f"but is {_a(element.kind)}; only an endEvent may end a dossier (a waiting element with a final "
            "status would leave every official's queue)"
        )
        for element in tree.elements
        if element.kind != "endEvent"
        and element.properties.get("dossier_status", "").strip() in FINAL_STATUSES
    ]


# -- the table --------------------------------------------------------------------------------------

_information = _needs(
    "information", "public information on the procedure", _kind(*_TASKS), _lane("applicant")
)
_LEVEL_3 = (
    _final_status_at_ends,
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
        _final_status_at_ends,
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
        *_DELIVERY,
    ),
}
