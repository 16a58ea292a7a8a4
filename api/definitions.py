"""Process definitions: analysts upload BPMN, list versions, read the XML back, lint at a level, and keep
drafts (their unfinished BPMN, one per process key and analyst, see ``engine/drafts.py``)."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import UnsupportedMediaType

from engine.drafts import MAX_DRAFT_BYTES, Drafts
from engine.errors import NotFoundError, ValidationError
from motcua.bundle import bundle_resolver
from motcua.settings import Settings

from . import context
from .auth import principal, require_roles

blp = Blueprint(
    "definitions", __name__, url_prefix="/api/v1/definitions", description="BPMN process definitions"
)
MAX_BPMN_BYTES = 5 * 1024 * 1024
MAX_VERSION = 2**31 - 1  # the column is a 32-bit integer
XML_TYPES = ("application/xml", "text/xml", "application/bpmn+xml")


class DefinitionSchema(Schema):
    id = fields.Integer(required=True)
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    name = fields.String(allow_none=True)
    sha256 = fields.String(required=True)
    source_file = fields.String()
    deployed_at = fields.DateTime()
    deployed_by = fields.String()


class DeployedSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    created = fields.Boolean(required=True)


class DefinitionQuery(Schema):
    key = fields.String(validate=validate.Length(max=200))


class LintQuery(Schema):
    level = fields.Integer(validate=validate.Range(min=1, max=4))


class ProblemSchema(Schema):
    file = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)
    element_id = fields.String(allow_none=True)
    message = fields.String(required=True)


class LintSchema(Schema):
    problems = fields.List(fields.Nested(ProblemSchema), required=True)


def _uploaded_documents() -> list[tuple[str, bytes]]:
    """Read BPMN from a multipart upload (field ``file``, several allowed) or from an XML body.

    Raises:
        ValidationError: nothing uploaded, or a file is too large.
    """
    if request.mimetype == "multipart/form-data":
        files = request.files.getlist("file")
        documents = [(f.filename or "upload.bpmn", f.read(MAX_BPMN_BYTES + 1)) for f in files]
    elif request.mimetype in XML_TYPES:
        name = request.headers.get("X-Filename", "upload.bpmn")
        documents = [(name, request.get_data(cache=False)[: MAX_BPMN_BYTES + 1])]
    else:
        raise UnsupportedMediaType(f"Send BPMN as multipart/form-data (field 'file') or as {XML_TYPES[0]}")
    if not documents or not any(body for _, body in documents):
        raise ValidationError("No BPMN was uploaded", {"file": ["required"]})
    too_big = [name for name, body in documents if len(body) > MAX_BPMN_BYTES]
    if too_big:
        raise ValidationError(
            "A BPMN file is larger than 5 MiB", {"file": [f"{n} is too large" for n in too_big]}
        )
    return documents


@blp.route("")
class Definitions(MethodView):
    @blp.arguments(DefinitionQuery, location="query")
    @blp.response(200, DefinitionSchema(many=True))
    @blp.doc(security=[{"bearer": []}])
    @require_roles("analyst")
    def get(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """List deployed definition versions, newest first per process key."""
        return context.engine().definitions(query.get("key"))

    @blp.response(201, DeployedSchema(many=True))
    @blp.doc(
        security=[{"bearer": []}],
        requestBody={
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                        },
                    }
                },
                "application/xml": {"schema": {"type": "string"}},
            }
        },
    )
    @require_roles("analyst")
    def post(self) -> list[dict[str, Any]]:
        """Validate and deploy BPMN (unchanged content is not deployed again)."""
        deployed: list[dict[str, Any]] = context.engine().deploy(
            _uploaded_documents(), deployed_by=principal().username
        )
        return deployed


@blp.route("/lint")
class Lint(MethodView):
    @blp.arguments(LintQuery, location="query")
    @blp.response(200, LintSchema)
    @blp.doc(security=[{"bearer": []}])
    @require_roles("analyst")
    def post(self, query: dict[str, Any]) -> dict[str, Any]:
        """Check BPMN without deploying it, optionally for conformance to a service level."""
        fallback = bundle_resolver(Settings.from_env().workflows_dir)
        problems = context.engine().lint(_uploaded_documents(), level=query.get("level"), fallback=fallback)
        return {"problems": problems}


@blp.route("/<string:key>/versions/<int:version>/xml")
class DefinitionXml(MethodView):
    @blp.response(200, content_type="application/xml")
    @blp.doc(security=[{"bearer": []}])
    @require_roles("analyst")
    def get(self, key: str, version: int) -> Response:
        """The BPMN XML of one deployed version, byte for byte."""
        if not 1 <= version <= MAX_VERSION:
            raise NotFoundError(f"No version {version} of '{key}'", key=key, version=version)
        with context.engine().store.unit_of_work(write=False) as uow:
            row = uow.definition_by_version(key, version)
        if row is None:
            raise NotFoundError(f"No version {version} of '{key}'", key=key, version=version)
        return Response(bytes(row.xml), mimetype="application/xml")


# -- drafts ------------------------------------------------------------------------------------------
class DraftSummarySchema(Schema):
    key = fields.String(required=True, metadata={"description": "the process id the draft defines"})
    owner = fields.String(required=True, metadata={"description": "the analyst whose draft it is"})
    name = fields.String(allow_none=True)
    base_version = fields.Integer(
        allow_none=True, metadata={"description": "the deployed version the draft started from"}
    )
    sha256 = fields.String(required=True)
    size = fields.Integer(required=True, metadata={"description": "bytes of BPMN XML"})
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class DraftSchema(DraftSummarySchema):
    xml = fields.String(required=True, metadata={"description": "the BPMN XML, as saved"})


class DraftInputSchema(Schema):
    xml = fields.String(required=True, validate=validate.Length(min=1, max=MAX_DRAFT_BYTES))
    base_version = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=MAX_VERSION))


class OperatorsSchema(Schema):
    operators = fields.List(fields.String(), required=True)


DRAFT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": DraftInputSchema},
        "application/xml": {"schema": {"type": "string"}},
    },
}


def _drafts() -> Drafts:
    engine = context.engine()
    return Drafts(engine.store, engine.clock)


def _draft_body() -> tuple[bytes | str, int | None]:
    """Read a draft from a JSON body ``{xml, base_version}`` or from an XML body (no base version).

    Raises:
        ValidationError: the XML is larger than the draft limit.
        UnsupportedMediaType: the body is neither JSON nor XML.
    """
    if request.mimetype in XML_TYPES:
        xml: bytes | str = request.get_data(cache=False)[: MAX_DRAFT_BYTES + 1]
        base_version = None
    elif request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"Send the draft as application/json ({{xml, base_version}}) or {XML_TYPES[0]}"
        )
    else:
        body = blp.ARGUMENTS_PARSER.parse(DraftInputSchema, request, location="json")
        xml, base_version = body["xml"], body.get("base_version")
    size = len(xml) if isinstance(xml, bytes) else len(xml.encode("utf-8", "surrogatepass"))
    if size > MAX_DRAFT_BYTES:
        raise ValidationError("A draft is larger than 5 MiB", {"xml": ["too large"]})
    return xml, base_version


@blp.route("/drafts")
class DraftList(MethodView):
    @blp.response(200, DraftSummarySchema(many=True))
    @blp.doc(security=[{"bearer": []}])
    @require_roles("analyst")
    def get(self) -> list[dict[str, Any]]:
        """The caller's drafts (without their XML), the most recently saved first."""
        return list(_drafts().list(principal().username))


@blp.route("/<string:key>/draft")
class Draft(MethodView):
    @blp.response(200, DraftSchema)
    @blp.doc(security=[{"bearer": []}])
    @require_roles("analyst")
    def get(self, key: str) -> dict[str, Any]:
        """The caller's draft of process ``key``, with its XML."""
        return _drafts().get(key, principal().username)

    @blp.response(200, DraftSummarySchema)
    @blp.doc(security=[{"bearer": []}], requestBody=DRAFT_BODY)
    @require_roles("analyst")
    def put(self, key: str) -> dict[str, Any]:
        """Save the caller's draft of process ``key`` (replacing their previous one).

        The XML is parsed as a deployment's is (no DTD, no entities, at most 5 MiB) and must define
        ``bpmn:process id=key``; it is not otherwise checked, and it never runs: deploy it to make a version.
        """
        xml, base_version = _draft_body()
        return _drafts().save(key, principal().username, xml, base_version=base_version)

    @blp.response(204)
    @blp.doc(security=[{"bearer": []}])
    @require_roles("analyst")
    def delete(self, key: str) -> None:
        """Throw away the caller's draft of process ``key``."""
        _drafts().delete(key, principal().username)


@blp.route("/operators")
class Operators(MethodView):
    @blp.response(200, OperatorsSchema)
    @blp.doc(security=[{"bearer": []}])
    @require_roles("analyst")
    def get(self) -> dict[str, Any]:
        """The service-task operators this engine has handlers for (``spiffworkflow:serviceTaskOperator``)."""
        return {"operators": sorted(context.engine().library.known_operators or [])}
