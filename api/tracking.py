"""Public tracking of a dossier by its code (tra cứu hồ sơ): no login, and nothing personal.

Anyone holding a dossier code (printed on the receipt) may see where the dossier stands: its procedure and
agency, status, receipt, due and finish dates and outcome. The applicant, the declared data, the files, the
documents and the handover log are never shown here. An unknown code and a malformed one get the same 404
problem, so the answer tells nothing beyond "no such dossier"; a rate limiter in front can key on the path
prefix ``/api/v1/track``.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from dossiers.status import STATUS_NAMES, Status

from . import context
from .errors import ProblemDocumentSchema

blp = Blueprint(
    "tracking",
    __name__,
    url_prefix="/api/v1/track",
    description="Tra cứu hồ sơ: public, non-personal tracking by dossier code",
)


class TrackedStatusSchema(Schema):
    code = fields.Integer(required=True, metadata={"description": "TrangThaiHoSo, 1-10"})
    name = fields.String(required=True)


class TrackedSchema(Schema):
    """What a dossier code reveals to anyone: no applicant data, no documents, no files."""

    code = fields.String(required=True)
    procedure_code = fields.String(required=True)
    procedure_name = fields.String(required=True)
    agency_code = fields.String(required=True)
    agency_name = fields.String(required=True)
    status = fields.Nested(TrackedStatusSchema, required=True)
    received_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True, metadata={"description": "the appointment (ngày hẹn trả)"})
    finished_at = fields.DateTime(allow_none=True)
    outcome = fields.String(allow_none=True, metadata={"description": "early | on_time | late"})


def tracked(code: str) -> dict[str, Any]:
    """Return the public, non-personal view of a dossier.

    Raises:
        NotFoundError: no such dossier.
    """
    service = context.dossiers()
    dossier = service.dossier(code)
    procedure = service.procedure(dossier["procedure_code"])
    return {
        "code": dossier["code"],
        "procedure_code": dossier["procedure_code"],
        "procedure_name": procedure["name"],
        "agency_code": dossier["agency_code"],
        "agency_name": procedure["agency"]["name"],
        "status": {"code": dossier["status"], "name": STATUS_NAMES[Status(dossier["status"])]},
        "received_at": dossier["received_at"],
        "due_at": dossier["due_at"],  # moved by an apology letter, if one was sent
        "finished_at": dossier["finished_at"],
        "outcome": dossier["outcome"],
    }


@blp.route("/<string:code>")
class Track(MethodView):
    @blp.response(200, TrackedSchema, headers={"Cache-Control": {"schema": {"type": "string"}}})
    @blp.alt_response(
        404,
        schema=ProblemDocumentSchema,
        content_type="application/problem+json",
        description="No dossier has this code",
    )
    @blp.doc(security=[])
    def get(self, code: str) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Track a dossier by its code: procedure, agency, status, received, due and finished dates, outcome.

        Public and non-personal: the applicant, the declaration, files and documents are not included."""
        return tracked(code), 200, {"Cache-Control": "no-store"}
