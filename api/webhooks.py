"""Webhooks: integrators register URLs that receive signed dossier events (see ``dossiers.webhooks``)."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from dossiers import webhooks

from . import context
from .auth import principal, require_scope

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/webhooks",
    description="Webhooks: dossier events pushed to integrators, signed with HMAC-SHA256",
)
SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"bearer": []}]
EVENT_NAMES = [*webhooks.EVENTS, webhooks.ALL_EVENTS]


def _owner() -> str | None:
    """Whose webhooks the caller may manage: their own, or everyone's for an admin (None)."""
    who = principal()
    return None if who.has("admin") else who.username


class WebhookCreateSchema(Schema):
    url = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=2000),
        metadata={"description": "Where the events are POSTed"},
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENT_NAMES)),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "Event names, or '*' for every event"},
    )


class WebhookSchema(Schema):
    id = fields.Integer(required=True)
    owner = fields.String(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class CreatedWebhookSchema(WebhookSchema):
    secret = fields.String(
        required=True,
        metadata={"description": "Signs every delivery (X-Motcua-Signature). Shown only in this response."},
    )


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema), required=True)


class DeliveriesQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class DeliverySchema(Schema):
    id = fields.Integer(required=True)
    event = fields.String(required=True)
    dossier_code = fields.String(allow_none=True)
    state = fields.String(required=True, metadata={"description": "pending, delivered or gave_up"})
    attempts = fields.Integer(required=True)
    last_status = fields.Integer(allow_none=True, metadata={"description": "HTTP status of the last try"})
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    due_at = fields.DateTime(allow_none=True, metadata={"description": "Next try; null once settled"})
    delivered_at = fields.DateTime(allow_none=True)
    gave_up_at = fields.DateTime(allow_none=True)
    payload = fields.Dict(required=True)


class DeliveryListSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema), required=True)


@blp.route("")
class Webhooks(MethodView):
    @blp.response(200, WebhookListSchema)
    @blp.doc(security=SECURITY)
    @require_scope("webhooks:manage")
    def get(self) -> dict[str, Any]:
        """List the caller's webhooks (an admin sees everyone's); secrets are never returned."""
        return {"items": webhooks.list_webhooks(context.engine().store, _owner())}

    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, CreatedWebhookSchema)
    @blp.doc(security=SECURITY)
    @require_scope("webhooks:manage")
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Register a webhook; the response carries its signing secret, which is never shown again."""
        engine = context.engine()
        created = webhooks.create_webhook(
            engine.store, owner=principal().username, url=body["url"], events=body["events"], now=engine.now()
        )
        location = url_for("webhooks.Webhook", webhook_id=created["id"])
        return created, 201, {"Location": location}


@blp.route("/<int:webhook_id>")
class Webhook(MethodView):
    @blp.response(200, WebhookSchema)
    @blp.doc(security=SECURITY)
    @require_scope("webhooks:manage")
    def get(self, webhook_id: int) -> dict[str, Any]:
        """Show one of the caller's webhooks, without its secret."""
        return webhooks.get_webhook(context.engine().store, webhook_id, _owner())

    @blp.response(204)
    @blp.doc(security=SECURITY)
    @require_scope("webhooks:manage")
    def delete(self, webhook_id: int) -> None:
        """Delete one of the caller's webhooks: no more events; its pending deliveries are given up."""
        engine = context.engine()
        webhooks.delete_webhook(engine.store, webhook_id, _owner(), engine.now())


@blp.route("/<int:webhook_id>/deliveries")
class Deliveries(MethodView):
    @blp.arguments(DeliveriesQuery, location="query")
    @blp.response(200, DeliveryListSchema)
    @blp.doc(security=SECURITY)
    @require_scope("webhooks:manage")
    def get(self, query: dict[str, Any], webhook_id: int) -> dict[str, Any]:
        """The latest deliveries of one of the caller's webhooks, newest first, with how each went."""
        items = webhooks.deliveries_of(context.engine().store, webhook_id, _owner(), limit=query["limit"])
        return {"items": items}
