"""Result delivery: the applicant's signed download link, the download itself, and the post's reports.

The download needs no login: whoever holds a valid link (issued to the applicant, 15 minutes) may use it,
except a logged-in caller who is not that applicant.  The first download is the hand-over of an online result
(the dossier reaches status 10); later ones within the link's validity change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from dossiers.access import check_see
from dossiers.postal import REPORTED, STATUSES
from dossiers.result_links import LinksNotConfigured, ResultLinks
from engine.errors import ForbiddenError
from motcua.settings import Settings

from . import context
from .auth import optional_principal, principal, require_scope

blp = Blueprint(
    "results", __name__, url_prefix="/api/v1", description="Kết quả: result delivery online and by post"
)
NOT_CONFIGURED = "Result links are not available: the server has no MOTCUA_LINK_SECRET configured"


class ResultSummarySchema(Schema):
    sha256 = fields.String(required=True, metadata={"description": "SHA-256 (hex) of the result document"})
    created_at = fields.DateTime(required=True, metadata={"description": "when the leader approved it"})
    collected_at = fields.DateTime(
        allow_none=True, metadata={"description": "when the applicant actually got it (status 10)"}
    )
    collected_via = fields.String(allow_none=True, metadata={"description": "online, post or desk"})
    delivery_method = fields.String(allow_none=True)


class ResultLinkSchema(Schema):
    url = fields.String(required=True, metadata={"description": "signed download link, valid 15 minutes"})
    expires_at = fields.DateTime(required=True)


class LinkQuery(Schema):
    u = fields.String(validate=validate.Length(max=200), metadata={"description": "the applicant"})
    exp = fields.String(validate=validate.Length(max=20), metadata={"description": "expiry, Unix seconds"})
    sig = fields.String(validate=validate.Length(max=128), metadata={"description": "HMAC-SHA256, hex"})


class PostalEventSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    at = fields.DateTime(required=True)
    note = fields.String(allow_none=True)
    actor = fields.String(required=True)


class PostalOrderSchema(Schema):
    tracking_number = fields.String(required=True)
    dossier_code = fields.String(required=True)
    recipient = fields.String(required=True)
    address = fields.String(required=True)
    phone = fields.String(allow_none=True)
    postage = fields.Integer(required=True, metadata={"description": "VND"})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    events = fields.List(fields.Nested(PostalEventSchema))


class PostalReportSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(REPORTED))
    at = fields.AwareDateTime(load_default=None, metadata={"description": "when it happened (default: now)"})
    note = fields.String(load_default=None, validate=validate.Length(max=2000))


def install(app: Flask, settings: Settings) -> None:
    """Give the app its result links, signed with ``settings.link_secret`` (none: links are refused)."""
    app.extensions["motcua.result_links"] = ResultLinks(settings.link_secret, settings.public_url)


def _links() -> ResultLinks:
    links: ResultLinks | None = current_app.extensions.get("motcua.result_links")
    return links or ResultLinks(None, "")


@contextmanager
def _configured() -> Iterator[None]:
    """Answer 503 when a link would have to be signed or checked but no secret is configured."""
    try:
        yield
    except LinksNotConfigured:
        abort(503, message=NOT_CONFIGURED)


@blp.route("/dossiers/<string:code>/result-link")
class ResultLink(MethodView):
    @blp.response(201, ResultLinkSchema)
    @blp.doc(security=[{"bearer": []}])
    def post(self, code: str) -> dict[str, Any]:
        """Get a signed link to download the electronic result: the applicant's, when it goes online.

        409 while there is no result yet or when the result is not delivered online; 503 when the server
        has no link secret."""
        who = principal()
        service = context.dossiers()
        check_see(who, service.dossier(code))
        with _configured():
            return service.result_link(code, who.username, _links())


@blp.route("/results/<string:code>")
class ResultDownload(MethodView):
    @blp.arguments(LinkQuery, location="query")
    @blp.response(200, content_type="application/pdf")
    def get(self, query: dict[str, Any], code: str) -> Response:
        """Download the result document through a signed link; the first download hands the result over.

        Headers: `Content-Disposition` (the file name), `X-Content-SHA256` and `ETag` (its SHA-256). An
        expired or altered link, or a logged-in caller other than the applicant, gets 403."""
        now = context.engine().now()
        with _configured():
            username = _links().verify(code, query.get("u"), query.get("exp"), query.get("sig"), now)
        who = optional_principal()
        if who is not None and who.username != username:
            raise ForbiddenError("This result link belongs to someone else")
        found = context.dossiers().collect_result(code, username)
        return Response(
            found["content"],
            mimetype=found["media_type"],
            headers={
                "Content-Disposition": f'attachment; filename="{found["filename"]}"',
                "X-Content-SHA256": found["sha256"],
                "ETag": f'"{found["sha256"]}"',
                "Cache-Control": "private, no-store",
            },
        )


@blp.route("/dossiers/<string:code>/postal-order")
class PostalOrder(MethodView):
    @blp.response(200, PostalOrderSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self, code: str) -> dict[str, Any]:
        """The postal order carrying the result, with the states the post reported."""
        service = context.dossiers()
        check_see(principal(), service.dossier(code))
        return service.postal_order(code)


@blp.route("/postal-orders/<string:tracking_number>/events")
class PostalEvents(MethodView):
    @blp.arguments(PostalReportSchema)
    @blp.response(201, PostalOrderSchema)
    @blp.doc(security=[{"apiKey": []}, {"bearer": []}])
    @require_scope("messages:send")
    def post(self, body: dict[str, Any], tracking_number: str) -> dict[str, Any]:
        """The post reports an order's state: collecting, then delivered; or cancelled (the result goes back
        to the desk). Allowed: registered → collecting → delivered, registered or collecting → cancelled;
        anything else is 409."""
        return context.dossiers().report_postal_event(
            tracking_number, body["status"], principal().username, at=body["at"], note=body["note"]
        )
