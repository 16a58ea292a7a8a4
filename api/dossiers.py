"""Dossiers: applicants submit and track them; officials of the agency read them; documents as PDF."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from dossiers import attachments
from dossiers.access import check_see
from dossiers.documents import DOCUMENT_TITLES, available_documents
from dossiers.lifecycle import CHANNEL_NAMES
from dossiers.service import Submission
from dossiers.status import STATUS_NAMES, Status
from engine.errors import ForbiddenError

from . import attachments as attachment_routes
from . import context
from .auth import principal, require_roles
from .results import ResultSummarySchema
from .schemas import DEADLINE_FLAGS, IDEMPOTENCY_PARAMETER, PageInfo, PageQuery, idempotency_key

blp = Blueprint(
    "dossiers", __name__, url_prefix="/api/v1/dossiers", description="Hồ sơ: submit and track dossiers"
)
DOCUMENT_KINDS = ("receipt", "supplement_request", "refusal", "apology", "control_slip", "declaration")


class ApplicantSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    id_number = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9]{6,20}$"))
    address = fields.String(validate=validate.Length(max=500))
    phone = fields.String(validate=validate.Regexp(r"^(\+84|0)[0-9]{9,10}$"))
    email = fields.Email()


class SubmitSchema(Schema):
    procedure_code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    applicant = fields.Nested(ApplicantSchema, required=True)
    channel = fields.String(load_default="online", validate=validate.OneOf(["online", "in_person", "post"]))
    delivery_method = fields.String(validate=validate.OneOf(["online", "desk", "post"]))
    pages = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    copies = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000))
    form_data = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "the declaration (the procedure's form); when given it is validated first and "
            "submitted with the dossier, so the applicant has no task left to open it"
        },
    )


class StatusSchema(Schema):
    code = fields.Integer(required=True)
    name = fields.String(required=True)


class TaskRefSchema(Schema):
    id = fields.String(required=True)
    element_id = fields.String(required=True)
    title = fields.String(allow_none=True)
    lane = fields.String(allow_none=True)
    form_ref = fields.String(allow_none=True)


class HandoverSchema(Schema):
    at = fields.DateTime()
    element_id = fields.String()
    from_role = fields.String(allow_none=True)
    to_role = fields.String(allow_none=True)
    actor = fields.String()
    result = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class DossierSchema(Schema):
    code = fields.String(required=True)
    procedure_code = fields.String(required=True)
    level = fields.Integer(required=True)
    agency_code = fields.String(required=True)
    status = fields.Method("dump_status", metadata={"description": "TrangThaiHoSo code and name"})
    channel = fields.String(attribute="channel_name", allow_none=True)
    delivery_method = fields.String(allow_none=True)
    applicant = fields.Dict()
    submitted_at = fields.DateTime()
    received_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    outcome = fields.String(allow_none=True)
    supplement_items = fields.List(fields.String(), allow_none=True)
    refusal_reason = fields.String(allow_none=True)
    apology = fields.Dict(allow_none=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    rating = fields.Integer(allow_none=True)
    due_soon_at = fields.DateTime(
        allow_none=True, metadata={"description": "when the dossier was found about to be late"}
    )
    overdue_at = fields.DateTime(allow_none=True, metadata={"description": "when it was found late"})
    due_soon = fields.Boolean(metadata={"description": DEADLINE_FLAGS["due_soon"]})
    overdue = fields.Boolean(metadata={"description": DEADLINE_FLAGS["overdue"]})
    apology_required = fields.Boolean(metadata={"description": DEADLINE_FLAGS["apology_required"]})
    tasks = fields.List(fields.Nested(TaskRefSchema))
    handovers = fields.List(fields.Nested(HandoverSchema))
    documents = fields.Method(
        "dump_documents",
        metadata={"description": "the address of every kind of document (some may not exist yet)"},
    )
    available_documents = fields.Method(
        "dump_available_documents",
        metadata={"description": "the documents that exist now: kind, Vietnamese title and address"},
    )
    result = fields.Nested(
        ResultSummarySchema, allow_none=True, metadata={"description": "the result document, once approved"}
    )

    def dump_status(self, dossier: dict[str, Any]) -> dict[str, Any]:
        return {"code": dossier["status"], "name": STATUS_NAMES[Status(dossier["status"])]}

    def dump_documents(self, dossier: dict[str, Any]) -> list[str]:
        return [url_for("dossiers.Document", code=dossier["code"], kind=kind) for kind in DOCUMENT_KINDS]

    def dump_available_documents(self, dossier: dict[str, Any]) -> list[dict[str, str]]:
        return [
            {
                "kind": kind,
                "title": DOCUMENT_TITLES[kind],
                "href": url_for("dossiers.Document", code=dossier["code"], kind=kind),
            }
            for kind in available_documents(dossier)
        ]


class DeclarationSchema(Schema):
    form = fields.Dict(
        allow_none=True,
        metadata={
            "description": "the procedure's declaration form: id, title and JSON Schema (null if none)"
        },
    )
    form_data = fields.Dict(
        allow_none=True, metadata={"description": "what the applicant declared (null until declared)"}
    )


class DossierListQuery(PageQuery):
    status = fields.Integer(validate=validate.Range(min=1, max=10))


class DossierPage(Schema):
    items = fields.List(fields.Nested(DossierSchema), required=True)
    page = fields.Nested(PageInfo, required=True)


class RatingSchema(Schema):
    score = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(validate=validate.Length(max=2000), load_default=None)


class ApologySchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    new_due_at = fields.AwareDateTime(
        required=True, metadata={"description": "The new appointment, later than the current due time."}
    )


def _visible(code: str) -> dict[str, Any]:
    dossier = context.dossiers().dossier(code)
    check_see(principal(), dossier)
    return dossier


@blp.route("")
class Dossiers(MethodView):
    @blp.response(201, DossierSchema)
    @blp.alt_response(413, **attachment_routes.TOO_LARGE)
    @blp.alt_response(415, **attachment_routes.UNSUPPORTED)
    @blp.alt_response(422, **attachment_routes.TOO_MANY)
    @blp.alt_response(
        200, schema=DossierSchema, description="What an earlier request with that Idempotency-Key opened"
    )
    @blp.doc(
        security=[{"bearer": []}],
        requestBody=attachment_routes.submission_request_body(SubmitSchema),
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    @require_roles("applicant")
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Submit a dossier for a procedure of level 2 or more; its process starts at once.

        Send the submission as JSON, or as multipart/form-data with the same JSON in a `payload` part and up
        to 10 files (PDF, JPEG or PNG by content, 10 MiB each) in `attachments` parts, stored with the
        dossier in one transaction. With an `Idempotency-Key`, a retry (same key, same submission) answers
        200 with the dossier the first request opened; the same key with another submission is a 409."""
        once = idempotency_key()
        body, uploads = attachment_routes.read_submission(SubmitSchema)
        submission = Submission(
            applicant=body["applicant"],
            channel=body["channel"],
            delivery_method=body.get("delivery_method"),
            pages=body["pages"],
            copies=body["copies"],
            form_data=body.get("form_data"),
        )
        dossier, created = attachments.submit(
            context.dossiers(),
            body["procedure_code"],
            submission,
            owner=principal().username,
            attachments=uploads,
            idempotency_key=once,
        )
        location = url_for("dossiers.Dossier", code=dossier["code"])
        return dossier, 201 if created else 200, {"Location": location}

    @blp.arguments(DossierListQuery, location="query")
    @blp.response(200, DossierPage)
    @blp.doc(security=[{"bearer": []}])
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List the dossiers the caller may see: an applicant's own, an official's agency's; newest first."""
        who = principal()
        if who.has("admin"):
            where: dict[str, Any] = {}
        elif who.has("reception", "specialist", "leader"):
            where = {"agency_code": who.agency_code}
        else:
            where = {"owner": who.username}
        where["status"] = query.get("status")
        offset = (query["page"] - 1) * query["per_page"]
        items, total = context.dossiers().dossiers(where, offset=offset, limit=query["per_page"])
        return {
            "items": [
                {**d, "tasks": [], "handovers": [], "channel_name": CHANNEL_NAMES.get(d["channel"])}
                for d in items
            ],
            "page": {"page": query["page"], "per_page": query["per_page"], "total": total},
        }


@blp.route("/<string:code>")
class Dossier(MethodView):
    @blp.response(200, DossierSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self, code: str) -> dict[str, Any]:
        """Track a dossier: status, due date, tasks waiting, the process-control slip, documents."""
        dossier = _visible(code)
        if not principal().has("reception", "specialist", "leader", "admin"):
            dossier["tasks"] = [t for t in dossier["tasks"] if t["lane"] == "applicant"]
        return dossier


@blp.route("/<string:code>/withdraw")
class Withdraw(MethodView):
    @blp.response(200, DossierSchema)
    @blp.doc(security=[{"bearer": []}])
    def post(self, code: str) -> dict[str, Any]:
        """Withdraw a dossier (the applicant's request, status 7)."""
        return context.dossiers().withdraw(code, actor=principal().username)


@blp.route("/<string:code>/rating")
class Rating(MethodView):
    @blp.arguments(RatingSchema)
    @blp.response(200, DossierSchema)
    @blp.doc(security=[{"bearer": []}])
    def post(self, body: dict[str, Any], code: str) -> dict[str, Any]:
        """Rate the service (1-5) once the result was returned."""
        return context.dossiers().rate(code, body["score"], body.get("comment"), actor=principal().username)


@blp.route("/<string:code>/apology")
class Apology(MethodView):
    @blp.arguments(ApologySchema)
    @blp.response(200, DossierSchema)
    @blp.doc(security=[{"bearer": []}])
    def post(self, body: dict[str, Any], code: str) -> dict[str, Any]:
        """Issue the apology letter of a dossier that is running late, with its reason and a new date (once).

        For the agency's specialists and leaders (form 04; download it as the `apology` document). The
        deadline job flags the dossiers that need one (`apology_required`)."""
        who = principal()
        dossier = _visible(code)
        if not who.has("admin") and not (
            who.has("specialist", "leader") and who.agency_code == dossier["agency_code"]
        ):
            raise ForbiddenError("Only the agency's specialists and leaders issue apology letters")
        context.dossiers().apologise(code, body["reason"], body["new_due_at"], actor=who.username)
        return context.dossiers().dossier(code)


@blp.route("/<string:code>/declaration")
class Declaration(MethodView):
    @blp.response(200, DeclarationSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self, code: str) -> dict[str, Any]:
        """The declaration the applicant submitted, as data with the form's JSON Schema (its titles label
        the fields); the same as the `declaration` document, for screens."""
        _visible(code)
        return context.dossiers().declaration(code)


@blp.route("/<string:code>/documents/<string:kind>")
class Document(MethodView):
    @blp.response(200, content_type="application/pdf")
    @blp.doc(security=[{"bearer": []}])
    def get(self, code: str, kind: str) -> Response:
        """Download a document of the dossier as PDF (receipt, supplement_request, refusal, apology,
        control_slip, or the pre-filled declaration)."""
        _visible(code)
        service = context.dossiers()
        pdf = service.prefilled_form(code) if kind == "declaration" else service.document(code, kind)
        return Response(
            pdf,
            mimetype="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{code}-{kind}.pdf"'},
        )
