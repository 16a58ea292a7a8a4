"""Hardened XML parsing for documents uploaded by process designers.

BPMN documents come from outside the engine, so they are parsed as hostile input: no DOCTYPE (and therefore
no entity declarations, external DTDs or parameter entities), no network access, no huge trees and a size
cap.  Every failure is a :class:`~engine.errors.DefinitionError` naming the file and line; lxml's
exceptions never escape.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from typing import Any

from lxml import etree
from SpiffWorkflow.spiff.parser.process import VALIDATOR

from engine.errors import DefinitionError

#: Largest document accepted, in bytes.  Real BPMN diagrams are tens of kilobytes.
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024

_FORBIDDEN_MARKUP = ("<!DOCTYPE", "<!ENTITY")
_ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
#: ``<!DOCTYPE`` / ``<!ENTITY`` as bytes in every encoding libxml2 detects by itself, so that a DTD is
#: refused before the parser ever sees it, whatever the document's encoding.
_FORBIDDEN_BYTES = tuple((marker.encode(enc), enc) for marker in _FORBIDDEN_MARKUP for enc in _ENCODINGS)
_XML_DECL_ENCODING = re.compile(r"""^(\ufeff?<\?xml[^>]*?\sencoding\s*=\s*)(["'])[^"']*\2""")

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
_SHORT_PREFIXES = {f"{{{BPMN_NS}}}": "bpmn:", f"{{{SPIFF_NS}}}": "spiffworkflow:"}
_SCHEMA_LOCK = threading.Lock()  # the shared XSD validator keeps its error log on itself


def _hardened_parser() -> Any:
    """Return a fresh lxml parser that never expands entities, loads DTDs or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def to_bytes(source: bytes | str, filename: str | None = None) -> bytes:
    """Return ``source`` as bytes; a ``str`` is encoded as UTF-8 and its XML declaration made to say so.

    Args:
        source: the document, raw bytes (returned unchanged) or already-decoded text.
        filename: the name used in errors.

    Returns:
        The bytes lxml should parse.

    Raises:
        DefinitionError: the text cannot be encoded (lone surrogates) or ``source`` is not text at all.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if not isinstance(source, str):
        raise DefinitionError(f"document must be bytes or text, not {type(source).__name__}", file=filename)
    try:
        return _XML_DECL_ENCODING.sub(r'\1"UTF-8"', source, count=1).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DefinitionError(
            f"document text cannot be encoded as UTF-8: {exc.reason}", file=filename
        ) from None


def _refuse_dtd_markup(data: bytes, filename: str) -> None:
    """Raise DefinitionError when the raw bytes contain a DOCTYPE or ENTITY declaration."""
    for marker, encoding in _FORBIDDEN_BYTES:
        position = data.find(marker)
        if position >= 0:
            line = data[:position].count("\n".encode(encoding)) + 1
            raise DefinitionError(
                "DOCTYPE and entity declarations are not allowed in BPMN documents",
                file=filename,
                line=line,
            )


def parse_xml(source: bytes | str, filename: str) -> Any:
    """Parse an untrusted XML document safely.

    The document is refused before parsing when it is too large or contains ``<!DOCTYPE``/``<!ENTITY``
    (so entity bombs are never expanded and external DTDs never fetched); it is then parsed by a parser
    that resolves no entities and has no network access, and refused again if lxml reports a DTD.

    Args:
        source: the document; a ``str`` is encoded as UTF-8 first (even when it declares another encoding).
        filename: the name used in error messages.

    Returns:
        The root ``lxml.etree._Element``.

    Raises:
        DefinitionError: the document is empty, over :data:`MAX_DOCUMENT_BYTES`, contains a DOCTYPE or
            entity declaration, or is not well-formed XML (with the line lxml reports).
    """
    data = to_bytes(source, filename)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DefinitionError(
            f"document is {len(data)} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes", file=filename
        )
    if not data.strip():
        raise DefinitionError("document is empty", file=filename)
    _refuse_dtd_markup(data, filename)
    try:
        root = etree.fromstring(data, _hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise DefinitionError(f"not well-formed XML: {exc.msg}", file=filename, line=exc.lineno) from None
    except (etree.LxmlError, ValueError) as exc:
        raise DefinitionError(f"not readable as XML: {exc}", file=filename) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise DefinitionError("DOCTYPE declarations are not allowed in BPMN documents", file=filename)
    return root


def _identified(element: Any, namespace: str | None) -> str | None:
    """Return the element's id when it has one and lives in ``namespace`` (any namespace when None)."""
    element_id = element.get("id")
    if not element_id or (namespace is not None and etree.QName(element).namespace != namespace):
        return None
    return str(element_id)


def element_lines(root: Any, namespace: str | None = None) -> dict[str, int]:
    """Map every element id in the document to the line where that element starts.

    Args:
        root: an lxml element, normally the document root.
        namespace: only count elements of this namespace URI (e.g. BPMN's, where ``id`` is an XML ID);
            None counts every element with an ``id`` attribute.

    Returns:
        ``{id: line}``; the first element wins when an id is repeated.
    """
    lines: dict[str, int] = {}
    for element in root.iter(etree.Element):
        element_id = _identified(element, namespace)
        if element_id and element.sourceline is not None:
            lines.setdefault(element_id, element.sourceline)
    return lines


def nearest_id(element: Any, namespace: str | None = None) -> str | None:
    """Return the id of ``element`` or of its closest ancestor that has one.

    Args:
        element: an lxml element (None is allowed and gives None).
        namespace: only accept ids of elements in this namespace URI; None accepts any element.

    Returns:
        The id, or None when neither the element nor any ancestor has one.
    """
    while element is not None:
        element_id = _identified(element, namespace)
        if element_id:
            return element_id
        element = element.getparent()
    return None


def element_id_at_line(root: Any, line: int | None, namespace: str | None = None) -> str | None:
    """Return the id of the (closest identified ancestor of the) first element starting at ``line``.

    Args:
        root: the document root.
        line: a line number reported by lxml, or None.
        namespace: as for :func:`nearest_id`.

    Returns:
        The element id, or None when no element starts on that line or none of its ancestors has an id.
    """
    if line is None:
        return None
    for element in root.iter(etree.Element):
        if element.sourceline == line:
            return nearest_id(element, namespace)
    return None


def short_tags(text: str) -> str:
    """Replace ``{namespace-uri}`` prefixes of BPMN and SpiffWorkflow tags in ``text`` by ``bpmn:`` etc."""
    for long, short in _SHORT_PREFIXES.items():
        text = text.replace(long, short)
    return text


def validate_schema(root: Any, filename: str) -> None:
    """Check a parsed BPMN document against the BPMN 2.0 XSD extended with SpiffWorkflow's elements.

    The schemas are SpiffWorkflow's local files, compiled once at import; instance documents cannot make
    the validator fetch anything.  Like SpiffWorkflow, it first renames bpmn.io's non-standard
    ``correlationPropertyRetrievalExpression/formalExpression`` to ``messagePath``, in place.

    Args:
        root: the document root from :func:`parse_xml`.
        filename: the name used in errors.

    Raises:
        DefinitionError: with the line and nearest BPMN element id of the first schema violation.
    """
    with _SCHEMA_LOCK:
        VALIDATOR.preprocess(root)
        valid = VALIDATOR.validator.validate(root)
        errors = [] if valid else list(VALIDATOR.validator.error_log)
    if valid:
        return
    first = errors[0] if errors else None
    line = first.line if first is not None else None
    detail = f": {short_tags(first.message)}" if first is not None else ""
    raise DefinitionError(
        f"does not match the BPMN schema{detail}",
        file=filename,
        line=line,
        element_id=element_id_at_line(root, line, BPMN_NS),
    )


@dataclass
class BpmnDocument:
    """A BPMN document that passed :func:`parse_xml` and :func:`validate_schema`.

    Attributes:
        name: the file name used in errors.
        xml: the exact bytes that were parsed.
        root: the lxml root element (``bpmn:definitions``).
        sha256: hex digest of ``xml``.
        lines: ``{BPMN element id: line}``, see :func:`element_lines`.
    """

    name: str
    xml: bytes
    root: Any
    sha256: str
    lines: dict[str, int]

    @property
    def processes(self) -> list[Any]:
        """The ``bpmn:process`` elements of the document."""
        return list(self.root.iter(f"{{{BPMN_NS}}}process"))


def read_bpmn_document(name: str, xml: bytes | str) -> BpmnDocument:
    """Parse untrusted BPMN safely and check it against the BPMN/SpiffWorkflow schema.

    Args:
        name: the file name used in errors.
        xml: the document (a ``str`` is encoded as UTF-8).

    Returns:
        The checked document.

    Raises:
        DefinitionError: as :func:`parse_xml` and :func:`validate_schema` do.
    """
    data = to_bytes(xml, name)
    root = parse_xml(data, name)
    validate_schema(root, name)
    return BpmnDocument(name, data, root, hashlib.sha256(data).hexdigest(), element_lines(root, BPMN_NS))
