"""Linting BPMN documents: report every problem found, with file, line and element, instead of the first.

Structural checks run on the XML (references, start and end events, reachability, gateway conditions,
task names, operators, expressions, timers); then SpiffWorkflow parses what passed, and its complaints are
added.  Timer expressions are ISO 8601 literals of their kind or sandbox expressions (``engine.timer_specs``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

from engine.bpmn import (
    NSMAP,
    ExpressionChecker,
    Problem,
    Resolver,
    _add,
    _at,
    _check_expressions,
    _check_message_refs,
    _check_references,
    _check_timers,
    _describe,
    _executable,
    _LintOptions,
    _q,
    _resolve_calls,
    _spiff_errors,
    _unique_name,
)
from engine.errors import DefinitionError
from engine.specs import MotcuaBpmnParser
from engine.xml_safety import BPMN_NS, BpmnDocument, read_bpmn_document

_FLOW_NODES = frozenset(
    f"{{{BPMN_NS}}}{tag}{kind}"
    for kind, tags in (
        ("Task", ("", "user", "manual", "script", "service", "send", "receive", "businessRule")),
        ("Event", ("start", "end", "intermediateCatch", "intermediateThrow", "boundary")),
        ("Gateway", ("exclusive", "inclusive", "parallel", "eventBased", "complex")),
        ("", ("callActivity", "subProcess", "transaction", "adHocSubProcess")),
    )
    for tag in tags
)


def _text(element: Any) -> str:
    return (element.text or "").strip() if element is not None else ""


def _scopes(process: Any) -> list[Any]:
    """The process and its embedded (non ad hoc) sub-processes: the containers of start/end events."""
    return list(process.xpath(". | .//bpmn:subProcess | .//bpmn:transaction", namespaces=NSMAP))


def _check_executable(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    if process.get("isExecutable", "true") != "true":
        yield _at(doc, process, f"process '{process.get('id')}' is not executable (isExecutable is not true)")


def _check_start_end(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    for scope in _scopes(process):
        for tag, what in (("startEvent", "start"), ("endEvent", "end")):
            if scope.find(_q(tag)) is None:
                yield _at(doc, scope, f"{_describe(scope)} has no {what} event")


def _reached(scope: Any, entries: Iterable[str]) -> set[str]:
    following: dict[str, list[str]] = {}
    for flow in scope.iterchildren(_q("sequenceFlow")):
        following.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
    for event in scope.iterchildren(_q("boundaryEvent")):
        following.setdefault(event.get("attachedToRef"), []).append(event.get("id"))
    seen: set[str] = set()
    pending = list(entries)
    while pending:
        node_id = pending.pop()
        if node_id not in seen:
            seen.add(node_id)
            pending.extend(following.get(node_id, ()))
    return seen


def _is_entry(node: Any) -> bool:
    return (
        node.tag == _q("startEvent")
        or node.get("triggeredByEvent") == "true"
        or node.get("isForCompensation") == "true"
    )


def _check_reachability(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    for scope in _scopes(process):
        nodes = [child for child in scope if child.tag in _FLOW_NODES]
        if scope.find(_q("startEvent")) is None:
            continue  # reported by _check_start_end
        reached = _reached(scope, [node.get("id") for node in nodes if _is_entry(node)])
        for node in nodes:
            if node.get("id") not in reached:
                yield _at(doc, node, f"{_describe(node)} cannot be reached from a start event")


def _check_gateways(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    outgoing: dict[str, list[Any]] = {}
    for flow in process.iter(_q("sequenceFlow")):
        outgoing.setdefault(flow.get("sourceRef"), []).append(flow)
    for gateway in process.iter(_q("exclusiveGateway"), _q("inclusiveGateway")):
        flows = outgoing.get(gateway.get("id"), [])
        default = gateway.get("default")
        if default and default not in {flow.get("id") for flow in flows}:
            yield _at(doc, gateway, f"default flow '{default}' does not leave {_describe(gateway)}")
        unconditioned = [flow for flow in flows if flow.get("id") != default and not _condition(flow)]
        for flow in unconditioned if len(flows) > 1 else ():
            yield _at(
                doc,
                flow,
                f"{_describe(flow)} leaves {_describe(gateway)} without a condition and is "
                "not its default flow",
            )


def _condition(flow: Any) -> str:
    return _text(flow.find(_q("conditionExpression")))


def _check_tasks(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    for task in process.iter(_q("userTask")):
        if not (task.get("name") or "").strip():
            yield _at(doc, task, f"{_describe(task)} has no name")
    for task in process.iter(_q("scriptTask")):
        if not _text(task.find(_q("script"))):
            yield _at(doc, task, f"{_describe(task)} has no script")


def _check_operators(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    for task in process.iter(_q("serviceTask")):
        operator = task.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NSMAP)
        name = (operator.get("id") or "").strip() if operator is not None else ""
        if not name:
            yield _at(doc, task, f"{_describe(task)} has no spiffworkflow:serviceTaskOperator with an id")
        elif options.known_operators is not None and name not in options.known_operators:
            yield _at(doc, task, f"{_describe(task)} uses unknown operator '{name}'")


_Check = Callable[[BpmnDocument, Any, _LintOptions], Iterator[Problem]]
#: Problems that would make SpiffWorkflow's parser fail (or fail confusingly): skip it for that process.
_BLOCKING: tuple[_Check, ...] = (_check_executable, _check_references, _check_message_refs, _check_start_end)
_ADVISORY: tuple[_Check, ...] = (
    _check_reachability,
    _check_gateways,
    _check_tasks,
    _check_operators,
    _check_expressions,
    _check_timers,
)


def _document_problems(doc: BpmnDocument, options: _LintOptions, blocked: set[str]) -> list[Problem]:
    """Run every check over every process of ``doc``; add ids of processes with blocking problems."""
    if not doc.processes:
        return [Problem(doc.name, doc.root.sourceline, doc.root.get("id"), "document defines no process")]
    problems: list[Problem] = []
    for process in doc.processes:
        blocking = [problem for check in _BLOCKING for problem in check(doc, process, options)]
        if blocking:
            blocked.add(process.get("id"))
        problems.extend(blocking)
        problems.extend(problem for check in _ADVISORY for problem in check(doc, process, options))
    return sorted(problems, key=lambda problem: problem.line or 0)


def _spiff_problems(
    registry: dict[str, BpmnDocument], blocked: set[str], parser: Any, resolve_missing: Resolver | None
) -> list[Problem]:
    """Run SpiffWorkflow's parser over every document and return what it rejects, as problems."""
    problems: list[Problem] = []
    added: list[BpmnDocument] = []
    for doc in list(registry.values()):
        try:
            _add(parser, doc, registry)
            added.append(doc)
        except DefinitionError as err:
            problems.append(Problem.from_error(err))
    problems.extend(Problem.from_error(err) for err in _resolve_calls(parser, registry, resolve_missing))
    for doc in added:
        for process in _executable(parser, doc):
            if process.get("id") in blocked:
                continue
            try:
                with _spiff_errors(registry, doc):
                    parser.get_spec(process.get("id"))
            except DefinitionError as err:
                problems.append(Problem.from_error(err))
    return problems


def lint_documents(
    documents: Sequence[tuple[str, bytes]],
    *,
    known_operators: Collection[str] | None = None,
    check_expression: ExpressionChecker | None = None,
    resolve_missing: Resolver | None = None,
    parser_class: type[Any] | None = None,
) -> list[Problem]:
    """Report every problem that can be found in BPMN documents, rather than stopping at the first.

    Unsafe, malformed or schema-invalid documents give one problem each and are not checked further.  The
    others get the structural checks (references, start/end events, reachability, gateway conditions, task
    names, operators, expressions, timers, ``isExecutable``) and are then parsed by SpiffWorkflow, whose
    complaints are added unless a check already reported that element (or the process has a blocking
    problem).

    Args:
        documents: ``(filename, xml)`` pairs.
        known_operators: the service-task operators that have handlers; None skips that check.
        check_expression: ``check_expression(source, mode)`` returns messages about a script (mode
            ``"exec"``) or expression (mode ``"eval"``); None skips expression checks (timer expressions
            are still checked to be ISO 8601 when they look like it).
        resolve_missing: as for :func:`load_documents`.
        parser_class: as for :func:`load_documents`.

    Returns:
        The problems, in document order; an empty list when the documents are clean.

    Raises:
        Nothing of its own; only what ``resolve_missing`` itself raises (e.g. a database error).
    """
    options = _LintOptions(known_operators, check_expression)
    problems: list[Problem] = []
    registry: dict[str, BpmnDocument] = {}
    for name, xml in documents:
        try:
            doc = read_bpmn_document(_unique_name(name, registry), xml)
        except DefinitionError as err:
            problems.append(Problem.from_error(err))
            continue
        registry[doc.name] = doc
    blocked: set[str] = set()
    for doc in list(registry.values()):
        problems.extend(_document_problems(doc, options, blocked))
    reported = {(problem.file, problem.element_id) for problem in problems}
    parser = (parser_class or MotcuaBpmnParser)(validator=None)
    for problem in _spiff_problems(registry, blocked, parser, resolve_missing):
        if problem.element_id is None or (problem.file, problem.element_id) not in reported:
            problems.append(problem)
    return problems
