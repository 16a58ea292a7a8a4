"""Files attached to dossiers: listed and downloaded by whoever may see the dossier, added by its applicant
while a supplement is requested; and the multipart form of a dossier submission (``read_submission``).

Limits (``dossiers.attachments``): at most 10 files a request (422 beyond), each at most 10 MiB (413), PDF,
JPEG or PNG by content (415); the whole body at most ``MAX_CONTENT_LENGTH`` (413).
"""

from __future__ import annotations

import io
import json
from http import HTTPStatus
from typing import Any

from flask import Response, request, send_file, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from marshmallow import ValidationError as SchemaError
from werkzeug.exceptions import RequestEntityTooLarge, UnprocessableEntity, UnsupportedMediaType

from dossiers import attachments as files

from . import context
from .auth import principal
from .errors import ProblemDocumentSchema, problem

blp = Blueprint(
    "attachments",
    __name__,
    url_prefix="/api/v1/dossiers",
    description="Tệp đính kèm: files attached to dossiers",
)
FILE_PART = "attachments"
PAYLOAD_PART = "payload"
MAX_PAYLOAD_BYTES = 1024 * 1024
MULTIPART = "multipart/form-data"
STATUS_OF = {files.AttachmentTooLarge: 413, files.UnsupportedAttachment: 415}


# -- schemas ------------------------------------------------------------------------------------------
class AttachmentSchema(Schema):
    id = fields.Integer(required=True)
    filename = fields.String(required=True)
    content_type = fields.String(required=True, metadata={"enum": list(files.ALLOWED_TYPES)})
    size = fields.Integer(required=True, metadata={"description": "bytes"})
    sha256 = fields.String(required=True, metadata={"description": "hex digest; the ETag of the download"})
    uploaded_by = fields.String(required=True)
    uploaded_at = fields.DateTime(required=True)
    href = fields.Method("dump_href", metadata={"description": "where to download the file"})

    def dump_href(self, row: dict[str, Any]) -> str:
        return url_for("attachments.Attachment", code=row["dossier_code"], attachment_id=row["id"])


class AttachmentListSchema(Schema):
    items = fields.List(fields.Nested(AttachmentSchema), required=True)


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "schema": ProblemDocumentSchema,
        "content_type": "application/problem+json",
        "description": description,
    }


TOO_LARGE = _problem_doc("A file is over 10 MiB (named in `filenames`), or the whole body over 20 MiB")
UNSUPPORTED = _problem_doc("A file is not a PDF, JPEG or PNG document by its content (named in `filenames`)")
TOO_MANY = _problem_doc("More than 10 files, or invalid fields")
BINARY = {"schema": {"type": "string", "format": "binary"}}
FILES_PROPERTY = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "maxItems": files.MAX_FILES,
    "description": f"PDF, JPEG or PNG files (by content), at most {files.MAX_FILES}, each at most 10 MiB",
}
FILES_ENCODING = {"contentType": ", ".join(files.ALLOWED_TYPES)}


def submission_request_body(schema: type[Schema]) -> dict[str, Any]:
    """The OpenAPI request body of a dossier submission: JSON, or multipart with files (see below)."""
    return {
        "required": True,
        "content": {
            "application/json": {"schema": schema},
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "required": [PAYLOAD_PART],
                    "properties": {PAYLOAD_PART: schema, FILE_PART: FILES_PROPERTY},
                },
                "encoding": {PAYLOAD_PART: {"contentType": "application/json"}, FILE_PART: FILES_ENCODING},
            },
        },
    }


# -- reading requests ---------------------------------------------------------------------------------
def _invalid(messages: dict[str, Any]) -> UnprocessableEntity:
    """A 422 carrying field messages as webargs reports them (``errors.http_problem`` lists them)."""
    error = UnprocessableEntity()
    error.data = {"messages": messages}  # type: ignore[attr-defined]
    return error


def read_uploads() -> list[files.Upload]:
    """Return the files of a multipart request's ``attachments`` parts (each read to just over the limit).

    A part left empty by a browser (no name, no bytes) is skipped.

    Raises:
        RequestEntityTooLarge: the body is over ``MAX_CONTENT_LENGTH`` (413).
        UnprocessableEntity: files in parts of other names (422).
    """
    others = sorted({name for name in request.files if name not in (FILE_PART, PAYLOAD_PART)})
    if others:
        raise _invalid({"files": {name: [f"unknown part; send files as '{FILE_PART}'"] for name in others}})
    uploads = []
    for part in request.files.getlist(FILE_PART):
        content = part.stream.read(files.MAX_FILE_BYTES + 1)
        if not part.filename and not content:
            continue
        uploads.append(files.Upload(part.filename or "", content, part.mimetype or None))
    return uploads


def _payload_text() -> str | None:
    if PAYLOAD_PART in request.form:
        return request.form[PAYLOAD_PART]
    part = request.files.get(PAYLOAD_PART)  # sent as a file, e.g. curl -F payload=@dossier.json
    if part is None:
        return None
    raw = part.stream.read(MAX_PAYLOAD_BYTES + 1)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise RequestEntityTooLarge()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_submission(schema: type[Schema]) -> tuple[dict[str, Any], list[files.Upload]]:
    """Return a dossier submission and its files: from a JSON body, or from a ``multipart/form-data`` body
    whose ``payload`` part holds the same JSON object and whose ``attachments`` parts hold the files.

    Raises:
        HTTPException: 422 with the invalid fields (``payload.<field>`` in multipart); 413 over the body
            limit.
    """
    if request.mimetype != MULTIPART:
        body: dict[str, Any] = blp.ARGUMENTS_PARSER.parse(schema, request, location="json")
        return body, []
    text = _payload_text()
    try:
        payload = json.loads(text) if text is not None else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise _invalid({"form": {PAYLOAD_PART: ["required: the submission as a JSON object"]}})
    try:
        loaded: dict[str, Any] = schema().load(payload)
    except SchemaError as error:
        raise _invalid({"form": {PAYLOAD_PART: error.messages}}) from error
    return loaded, read_uploads()


# -- errors -------------------------------------------------------------------------------------------
@blp.app_errorhandler(files.AttachmentRejected)
def rejected(error: files.AttachmentRejected) -> Response:
    """Answer refused files with 413 (too large) or 415 (not PDF, JPEG or PNG), naming them."""
    status = next((code for cls, code in STATUS_OF.items() if isinstance(error, cls)), 422)
    return problem(
        status,
        HTTPStatus(status).phrase,
        error.message,
        code=error.code,
        errors=error.errors,
        filenames=error.filenames,
    )


# -- routes -------------------------------------------------------------------------------------------
@blp.route("/<string:code>/attachments")
class Attachments(MethodView):
    @blp.response(200, AttachmentListSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self, code: str) -> dict[str, Any]:
        """List the files of a dossier (metadata only), in the order they were attached."""
        return {"items": files.list_for(context.dossiers(), code, principal())}

    @blp.response(201, AttachmentListSchema)
    @blp.alt_response(409, **_problem_doc("The dossier is not waiting for a supplement (status 5)"))
    @blp.alt_response(413, **TOO_LARGE)
    @blp.alt_response(415, **UNSUPPORTED)
    @blp.alt_response(422, **TOO_MANY)
    @blp.doc(
        security=[{"bearer": []}],
        requestBody={
            "required": True,
            "content": {
                MULTIPART: {
                    "schema": {
                        "type": "object",
                        "required": [FILE_PART],
                        "properties": {FILE_PART: FILES_PROPERTY},
                    },
                    "encoding": {FILE_PART: FILES_ENCODING},
                }
            },
        },
    )
    def post(self, code: str) -> tuple[dict[str, Any], int]:
        """Add files to a dossier while its agency waits for a supplement (status 5); only its applicant may.

        Name the files returned here when completing the supplement task."""
        if request.mimetype != MULTIPART:
            raise UnsupportedMediaType(f"Send the files as {MULTIPART} parts named '{FILE_PART}'")
        stored = files.add_for_supplement(context.dossiers(), code, read_uploads(), principal())
        return {"items": stored}, 201


@blp.route("/<string:code>/attachments/<int:attachment_id>")
class Attachment(MethodView):
    @blp.doc(
        security=[{"bearer": []}],
        responses={
            "200": {
                "description": "The file as it was attached; `ETag` is its SHA-256",
                "content": {content_type: BINARY for content_type in files.ALLOWED_TYPES},
                "headers": {
                    "ETag": {"schema": {"type": "string"}, "description": "the SHA-256, quoted"},
                    "Content-Disposition": {"schema": {"type": "string"}},
                },
            },
            "304": {"description": "If-None-Match named the file's ETag"},
        },
    )
    def get(self, code: str, attachment_id: int) -> Response:
        """Download a file of a dossier, byte for byte."""
        found = files.get(context.dossiers(), code, attachment_id, principal())
        response = send_file(
            io.BytesIO(found["content"]),
            mimetype=found["content_type"],
            as_attachment=True,
            download_name=found["filename"],
            etag=found["sha256"],
            last_modified=found["uploaded_at"],
            max_age=None,
            conditional=True,
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, no-cache"
        return response
