"""Marshmallow schemas shared by the blueprints (each blueprint keeps its own request/response schemas)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class PageQuery(Schema):
    """Pagination of list endpoints: stable ordering, 1-based pages."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))


class PageInfo(Schema):
    """Where a page sits in the whole list."""

    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


# The deadline flags of a dossier (dossiers/deadlines.py), described once for the dossier and task schemas.
DEADLINE_FLAGS = {
    "due_soon": "at most the due-soon window (one working day by default) of working time is left before the "
    "due date, which has not passed yet; false once finished",
    "overdue": "the due date has passed and the dossier is not finished",
    "apology_required": "due soon or overdue with no apology letter yet: the agency must issue the apology "
    "and new date (phiếu xin lỗi và hẹn lại ngày trả kết quả) before the due date",
}


def paginate(items: list, page: int, per_page: int) -> dict:
    """Return one page of an already-ordered list with its page info."""
    start = (page - 1) * per_page
    return {
        "items": items[start : start + per_page],
        "page": {"page": page, "per_page": per_page, "total": len(items)},
    }
