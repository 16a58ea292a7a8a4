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


def paginate(items: list, page: int, per_page: int) -> dict:
    """Return one page of an already-ordered list with its page info."""
    start = (page - 1) * per_page
    return {
        "items": items[start : start + per_page],
        "page": {"page": page, "per_page": per_page, "total": len(items)},
    }
