"""Process definitions: analysts upload BPMN, list versions, read the XML back and lint at a level."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

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
        from werkzeug.exceptions import UnsupportedMediaType

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
