"""The public catalogue (level 1 information) and form downloads (level 2): no login needed."""

from __future__ import annotations

import unicodedata
from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from . import context
from .auth import require_roles
from .schemas import PageInfo, PageQuery, paginate

blp = Blueprint(
    "procedures",
    __name__,
    url_prefix="/api/v1/procedures",
    description="Thủ tục hành chính: the public catalogue",
)


class ProcedureQuery(PageQuery):
    q = fields.String(
        validate=validate.Length(max=200), metadata={"description": "words of the name or the code"}
    )
    sector = fields.String(validate=validate.Length(max=200))
    level = fields.Integer(validate=validate.Range(min=1, max=4))
    agency_code = fields.String(validate=validate.Length(max=40))


class ProcedureSummary(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    sector = fields.String(required=True)
    level = fields.Integer(required=True)
    decree_42_class = fields.String(required=True)
    agency = fields.Dict(required=True)
    channels = fields.List(
        fields.Dict(), metadata={"description": "each channel (kind) with its processing time and unit"}
    )


class ProcedurePage(Schema):
    items = fields.List(fields.Nested(ProcedureSummary), required=True)
    page = fields.Nested(PageInfo, required=True)


class ProcedureDetail(ProcedureSummary):
    """Everything the national database publishes about a procedure (see workflows/procedures)."""

    class Meta:
        unknown = "include"

    applicant_types = fields.Raw()
    channels = fields.List(fields.Dict())
    fees = fields.List(fields.Dict())
    components = fields.List(fields.Dict())
    steps = fields.List(fields.String())
    conditions = fields.List(fields.String())
    result = fields.Raw()
    legal_basis = fields.List(fields.Dict())
    cases = fields.List(fields.Dict())
    delivery_methods = fields.List(fields.String())
    bpmn = fields.String()
    notes = fields.Raw()


def _folded(text: str) -> str:
    """Lower-case without diacritics, so 'ly lich' finds 'Lý lịch' (đ folds to d)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _matches(procedure: dict[str, Any], query: dict[str, Any]) -> bool:
    words = _folded(query.get("q", "")).split()
    haystack = _folded(f"{procedure['code']} {procedure['name']}")
    return (
        all(word in haystack for word in words)
        and ("sector" not in query or _folded(query["sector"]) == _folded(procedure["sector"]))
        and ("level" not in query or query["level"] == procedure["level"])
        and ("agency_code" not in query or query["agency_code"] == procedure["agency"]["code"])
    )


@blp.route("")
class Procedures(MethodView):
    @blp.arguments(ProcedureQuery, location="query")
    @blp.response(200, ProcedurePage)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List procedures by code; search name or code (diacritics optional), sector, level, agency."""
        procedures = context.dossiers().procedures()
        found = [p for p in procedures if _matches(p, query)]
        return paginate(found, query["page"], query["per_page"])


@blp.route("/<string:code>")
class Procedure(MethodView):
    @blp.response(200, ProcedureDetail)
    def get(self, code: str) -> dict[str, Any]:
        """The level-1 information of one procedure: steps, components, processing time, fees, legal basis."""
        procedure: dict[str, Any] = context.dossiers().procedure(code)
        return procedure


@blp.route("/<string:code>/forms/<string:form_id>")
class Form(MethodView):
    @blp.response(200, content_type="application/pdf")
    def get(self, code: str, form_id: str) -> Response:
        """Download the blank template of one of the procedure's forms (PDF, Vietnamese)."""
        pdf = context.dossiers().form_pdf(code, form_id)
        return Response(
            pdf,
            mimetype="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{form_id}.pdf"'},
        )


class FormDefinitionSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    schema = fields.Dict(required=True, metadata={"description": "the form as JSON Schema (draft 2020-12)"})


@blp.route("/<string:code>/forms/<string:form_id>/schema")
class FormDefinition(MethodView):
    @blp.response(200, FormDefinitionSchema)
    def get(self, code: str, form_id: str) -> dict[str, Any]:
        """The JSON Schema of one of the procedure's forms: the online declaration (level 3+) is checked
        against it, and its titles label the fields."""
        form: dict[str, Any] = context.dossiers().procedure_form(code, form_id)
        return form


class BindingSchema(Schema):
    bpmn = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z][a-z0-9_]*_l[1-4]$"),
        metadata={"description": "the process key, e.g. dossier_l4"},
    )


@blp.route("/<string:code>/binding")
class Binding(MethodView):
    @blp.arguments(BindingSchema)
    @blp.response(200, ProcedureDetail)
    @blp.doc(security=[{"bearer": []}])
    @require_roles("analyst")
    def put(self, body: dict[str, Any], code: str) -> dict[str, Any]:
        """Run the procedure on another deployed process; refused unless it conforms to its level."""
        procedure: dict[str, Any] = context.dossiers().catalogue.bind(code, body["bpmn"])
        return procedure
