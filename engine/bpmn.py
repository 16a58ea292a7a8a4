"""Loading BPMN documents into SpiffWorkflow specs, and linting them.

Documents are parsed by :func:`engine.xml_safety.parse_xml` (no DTDs, no entities, no network), checked
against SpiffWorkflow's BPMN + spiffworkflow XSD, and only then handed, as trees, to SpiffWorkflow's
``SpiffBpmnParser``; SpiffWorkflow never opens a file or parses a string itself.  Every failure becomes a
:class:`~engine.errors.DefinitionError` naming the file, line and element.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec

from engine import timer_specs
from engine.errors import DefinitionError
from engine.sandbox import check_script
from engine.specs import MotcuaBpmnParser
from engine.xml_safety import (
    BPMN_NS,
    SPIFF_NS,
    BpmnDocument,
    element_lines,
    nearest_id,
    parse_xml,
    read_bpmn_document,
    validate_schema,
)

#: Given a process id, returns ``(filename, xml)`` of the deployed document defining it, or None.
Resolver = Callable[[str], "tuple[str, bytes] | None"]
#: ``check(source, mode)`` returns messages about a script (mode "exec") or expression (mode "eval").
ExpressionChecker = Callable[[str, str], list[str]]
NSMAP = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}


@dataclass(frozen=True)
class ParsedProcess:
    """One executable process of a deployed document, parsed into SpiffWorkflow specs."""

    key: str
    name: str | None
    spec: BpmnProcessSpec  # the top process
    subprocess_specs: dict[str, BpmnProcessSpec]  # every called / embedded process it needs, by id
    source_file: str
    xml: bytes = field(repr=False)  # the exact bytes of the document the process came from
    sha256: str


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document, located as precisely as possible."""

    file: str | None
    line: int | None
    element_id: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a JSON-able dict (file, line, element_id, message)."""
        return asdict(self)

    @classmethod
    def from_error(cls, err: DefinitionError) -> Problem:
        """Return the problem a DefinitionError describes."""
        return cls(err.file, err.line, err.element_id, err.message)

    def to_error(self) -> DefinitionError:
        """Return a DefinitionError carrying this problem."""
        return DefinitionError(self.message, file=self.file, line=self.line, element_id=self.element_id)


def _validation_message(exc: ValidationException) -> str:
    text = str(exc.args[0]) if exc.args else "invalid definition"
    cause = exc.__context__  # SpiffWorkflow re-raises any error in a task parser as ValidationException(repr)
    if cause is not None and not isinstance(cause, ValidationException) and text == repr(cause):
        text = f"could not parse: {type(cause).__name__}: {cause}"
    return "; ".join([text, *exc.notes]) if exc.notes else text


def _from_validation(
    exc: ValidationException, registry: dict[str, BpmnDocument], current: BpmnDocument
) -> DefinitionError:
    """Turn SpiffWorkflow's ValidationException into a DefinitionError with a real line number."""
    doc = registry.get(exc.file_name) or current
    element_id = exc.id or None
    line = exc.line_number if isinstance(exc.line_number, int) else None
    if line is None and element_id:
        line = doc.lines.get(element_id)
    return DefinitionError(_validation_message(exc), file=doc.name, line=line, element_id=element_id)


@contextmanager
def _spiff_errors(registry: dict[str, BpmnDocument], current: BpmnDocument) -> Iterator[None]:
    """Convert anything SpiffWorkflow's parser raises inside the block into a DefinitionError."""
    try:
        yield
    except DefinitionError:
        raise
    except ValidationException as exc:
        raise _from_validation(exc, registry, current) from exc
    except Exception as exc:
        raise DefinitionError(f"could not parse: {type(exc).__name__}: {exc}", file=current.name) from exc


def _add(parser: Any, doc: BpmnDocument, registry: dict[str, BpmnDocument]) -> None:
    with _spiff_errors(registry, doc):
        parser.add_bpmn_xml(doc.root, filename=doc.name)


def _unique_name(name: str, registry: dict[str, BpmnDocument]) -> str:
    candidate, counter = name, 1
    while candidate in registry:
        counter += 1
        candidate = f"{name} ({counter})"
    return candidate


def _add_deployed(parser: Any, registry: dict[str, BpmnDocument], fetched: tuple[str, bytes]) -> None:
    """Add an already-deployed document, minus processes the given documents redefine."""
    doc = read_bpmn_document(_unique_name(fetched[0], registry), fetched[1])
    for process in doc.processes:
        if process.get("id") in parser.process_parsers:
            process.getparent().remove(process)
    registry[doc.name] = doc
    _add(parser, doc, registry)


def _unresolved_calls(parser: Any, docs: Iterable[BpmnDocument]) -> list[tuple[BpmnDocument, Any, str]]:
    return [
        (doc, call, call.get("calledElement"))
        for doc in docs
        for call in doc.root.iter(f"{{{BPMN_NS}}}callActivity")
        if call.get("calledElement") and call.get("calledElement") not in parser.process_parsers
    ]


def _missing_call_error(doc: BpmnDocument, call: Any, process_id: str) -> DefinitionError:
    return DefinitionError(
        f"call activity '{call.get('id')}' calls process '{process_id}', which is neither in these "
        "documents nor deployed",
        file=doc.name,
        line=call.sourceline,
        element_id=call.get("id"),
    )


def _resolve_calls(
    parser: Any, registry: dict[str, BpmnDocument], resolve_missing: Resolver | None
) -> list[DefinitionError]:
    """Add deployed documents for missing call-activity targets until nothing more can be found.

    Returns one error per call activity whose target is still missing, plus any error in a fetched document.
    """
    errors: list[DefinitionError] = []
    attempted: set[str] = set()
    while True:
        missing = sorted({pid for _, _, pid in _unresolved_calls(parser, registry.values())} - attempted)
        if not missing:
            break
        for process_id in missing:
            attempted.add(process_id)
            fetched = resolve_missing(process_id) if resolve_missing is not None else None
            if fetched is None or process_id in parser.process_parsers:
                continue
            try:
                _add_deployed(parser, registry, fetched)
            except DefinitionError as err:
                errors.append(err)
    calls = _unresolved_calls(parser, registry.values())
    return errors + [_missing_call_error(doc, call, pid) for doc, call, pid in calls]


def _executable(parser: Any, doc: BpmnDocument) -> list[Any]:
    """Return the process elements of ``doc`` that SpiffWorkflow treats as executable."""
    return [
        process
        for process in doc.processes
        if process.get("id") in parser.process_parsers
        and parser.process_parsers[process.get("id")].process_executable
    ]


def _build(parser: Any, doc: BpmnDocument, process: Any, registry: dict[str, BpmnDocument]) -> ParsedProcess:
    key = process.get("id")
    with _spiff_errors(registry, doc):
        spec = parser.get_spec(key)
        subprocess_specs = dict(parser.get_subprocess_specs(key))
    return ParsedProcess(key, process.get("name"), spec, subprocess_specs, doc.name, doc.xml, doc.sha256)


def _read_all(documents: Sequence[tuple[str, bytes]]) -> dict[str, BpmnDocument]:
    registry: dict[str, BpmnDocument] = {}
    for name, xml in documents:
        if name in registry:
            raise DefinitionError("two documents have the same file name", file=name)
        registry[name] = read_bpmn_document(name, xml)
    return registry


def load_documents(
    documents: Sequence[tuple[str, bytes]],
    resolve_missing: Resolver | None = None,
    *,
    parser_class: type[Any] | None = None,
) -> list[ParsedProcess]:
    """Parse BPMN documents, together, into SpiffWorkflow specs ready to run.

    All documents go into one parser, so call activities may target processes in any of them; a target
    found in none is asked of ``resolve_missing`` (repeatedly, since fetched documents may call others).

    Args:
        documents: ``(filename, xml)`` pairs; ``xml`` is bytes (a str is encoded as UTF-8).
        resolve_missing: given a process id, returns ``(filename, xml)`` of the deployed document that
            defines it, or None.  Processes of fetched documents are used but not returned.
        parser_class: a ``SpiffBpmnParser`` subclass to build the specs with (default ``MotcuaBpmnParser``).

    Returns:
        One :class:`ParsedProcess` per executable process of the given documents, in document order.

    Raises:
        DefinitionError: the first problem found, naming file, line and element: unsafe or malformed XML,
            schema violation, broken references, a document without an executable process, a call
            activity whose target cannot be found, a script, condition or timer that does not compile, or
            anything SpiffWorkflow's parser rejects.
    """
    registry = _read_all(documents)
    given = list(registry.values())
    options = _LintOptions(check_expression=check_script)
    for doc in given:
        for process in doc.processes:
            for check in (_check_references, _check_message_refs, _check_timers, _check_expressions):
                for problem in check(doc, process, options):
                    raise problem.to_error()
    parser = (parser_class or MotcuaBpmnParser)(validator=None)  # validated already, under a lock
    for doc in given:
        _add(parser, doc, registry)
        if not _executable(parser, doc):
            raise DefinitionError("document defines no executable process", file=doc.name)
    errors = _resolve_calls(parser, registry, resolve_missing)
    if errors:
        raise errors[0]
    return [_build(parser, doc, process, registry) for doc in given for process in _executable(parser, doc)]


# -- reference checks, shared by loading and linting ----------------------------------------


@dataclass(frozen=True)
class _LintOptions:
    known_operators: Collection[str] | None = None
    check_expression: ExpressionChecker | None = None


_REFERENCES = (("sequenceFlow", ("sourceRef", "targetRef")), ("boundaryEvent", ("attachedToRef",)))


def _q(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def _at(doc: BpmnDocument, element: Any, message: str) -> Problem:
    return Problem(doc.name, element.sourceline, nearest_id(element, BPMN_NS), message)


def _describe(element: Any) -> str:
    return f"{etree.QName(element).localname} '{element.get('id')}'"


def _check_references(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    ids = {element.get("id") for element in process.iter(etree.Element) if element.get("id")}
    for tag, attributes in _REFERENCES:
        for element in process.iter(_q(tag)):
            missing = [(name, element.get(name)) for name in attributes if element.get(name) not in ids]
            for name, ref in missing:
                yield _at(
                    doc, element, f"{name} '{ref}' of {_describe(element)} names nothing in the process"
                )


def _check_message_refs(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    messages = {message.get("id") for message in doc.root.iter(_q("message"))}
    for definition in process.iter(_q("messageEventDefinition")):
        ref = definition.get("messageRef")
        if ref and ref not in messages:
            yield _at(doc, definition, f"messageRef '{ref}' names no bpmn:message of the document")


def _check_timers(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    """Every timer needs an ISO 8601 literal of its kind (bare or quoted) or a valid Python expression."""
    for definition in process.iter(_q("timerEventDefinition")):
        event = definition.getparent()
        element = event.get("id") or definition.get("id") or "?"
        specs = [child for child in definition if etree.QName(child).localname in timer_specs.KINDS]
        if not specs:
            yield _at(doc, event, f"Timer '{element}' has no timeDate, timeDuration or timeCycle")
        for spec in specs:
            kind = etree.QName(spec).localname
            for message in timer_specs.expression_problems(
                kind, element, spec.text, options.check_expression
            ):
                yield _at(doc, event, message)


# Where scripts and expressions live: (xpath below a process, what to call it, compile mode).
_EXPRESSIONS = (
    ("bpmn:scriptTask/bpmn:script", "script", "exec"),
    ("bpmn:extensionElements/spiffworkflow:preScript", "pre-script", "exec"),
    ("bpmn:extensionElements/spiffworkflow:postScript", "post-script", "exec"),
    ("bpmn:sequenceFlow/bpmn:conditionExpression", "condition", "eval"),
    ("bpmn:loopCardinality|.//bpmn:completionCondition|.//bpmn:loopCondition", "loop expression", "eval"),
)


def _expressions(process: Any) -> Iterator[tuple[Any, str, str, str]]:
    """Yield ``(element, label, source, mode)`` for every script and expression in the process."""
    for path, label, mode in _EXPRESSIONS:
        for element in process.xpath(f".//{path}", namespaces=NSMAP):
            if (element.text or "").strip():
                yield element, label, element.text, mode
    params = ".//spiffworkflow:serviceTaskOperator//spiffworkflow:parameter"
    for param in process.xpath(params, namespaces=NSMAP):
        if (param.get("value") or "").strip():
            yield param, f"parameter '{param.get('id')}'", param.get("value"), "eval"


def _check_expressions(doc: BpmnDocument, process: Any, options: _LintOptions) -> Iterator[Problem]:
    """Every script, condition and service parameter must compile in the sandbox."""
    if options.check_expression is None:
        return
    for element, label, source, mode in _expressions(process):
        try:
            messages = [str(message) for message in options.check_expression(source, mode)]
        except Exception as exc:  # a broken checker must not hide the other problems
            messages = [f"could not be checked: {type(exc).__name__}: {exc}"]
        for message in messages:
            yield _at(doc, element, f"{label}: {message}")


__all__ = [
    "BpmnDocument",
    "ExpressionChecker",
    "ParsedProcess",
    "Problem",
    "Resolver",
    "element_lines",
    "load_documents",
    "parse_xml",
    "read_bpmn_document",
    "validate_schema",
]
