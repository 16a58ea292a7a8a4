"""Marshmallow schemas and request helpers shared by the blueprints (each blueprint keeps its own
request/response schemas)."""

from __future__ import annotations

import re

from flask import request
from marshmallow import Schema, fields, validate

from engine.errors import ValidationError


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


_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "schema": {"type": "string", "pattern": _IDEMPOTENCY_KEY.pattern},
    "description": "a retry with the same key answers with what the first request created",
}


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` header, if any.

    Raises:
        ValidationError: the key is not 1-200 letters, digits or ``._:-``.
    """
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise ValidationError("Bad Idempotency-Key", {"Idempotency-Key": ["1-200 letters, digits, ._:-"]})
    return key
