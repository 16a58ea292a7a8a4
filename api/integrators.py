"""What other systems do over HTTP: start processes (idempotently) and deliver messages."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine.errors import ForbiddenError, ValidationError

from . import context
from .auth import principal, require_scope
from .schemas import IDEMPOTENCY_PARAMETER, idempotency_key

blp = Blueprint(
    "integrators", __name__, url_prefix="/api/v1", description="Integrators: processes and messages"
)


class StartSchema(Schema):
    data = fields.Dict(keys=fields.String(), load_default=dict)
    business_key = fields.String(validate=validate.Length(min=1, max=200), load_default=None)


class InstanceSchema(Schema):
    id = fields.String(required=True)
    process_key = fields.String(required=True)
    business_key = fields.String(allow_none=True)
    status = fields.String(required=True)
    row_version = fields.Integer(required=True)
    tasks = fields.List(fields.Dict())
    timers = fields.List(fields.Dict())
    subscriptions = fields.List(fields.Dict())


class MessageSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    correlation = fields.Dict(keys=fields.String(), load_default=dict)
    data = fields.Dict(keys=fields.String(), load_default=dict)


@blp.route("/processes/<string:key>/instances")
class Instances(MethodView):
    @blp.arguments(StartSchema)
    @blp.response(201, InstanceSchema)
    @blp.alt_response(
        200,
        schema=InstanceSchema,
        description="The instance an earlier request with the same Idempotency-Key started",
    )
    @blp.doc(
        security=[{"apiKey": []}, {"bearer": []}],
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    @require_scope("processes:start")
    def post(self, body: dict[str, Any], key: str) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Start an instance of the latest version of process ``key``; a repeated Idempotency-Key returns the
        instance the first request started."""
        who = principal()
        once = idempotency_key()
        if once is None:
            view = context.engine().start(key, body["data"], body["business_key"], actor=who.username)
            created = True
        else:
            view, created = context.engine().start_once(
                key,
                body["data"],
                owner=who.username,
                idempotency_key=once,
                business_key=body["business_key"],
            )
        location = url_for("integrators.Instances", key=key) + f"/{view['id']}"
        return view, 201 if created else 200, {"Location": location}


# Messages motcua delivers itself, each only after its own proof: an integrator cannot skip the proof.
RESERVED_MESSAGES = {
    "payment.confirmed": "the bank's signed payment notification (/api/v1/payments/vnpay/ipn)",
    "result.collected": "the applicant's download through a signed result link",
    "post.delivered": "the post's report (/api/v1/postal-orders/{tracking_number}/events)",
    "post.cancelled": "the post's report (/api/v1/postal-orders/{tracking_number}/events)",
}


@blp.route("/messages")
class Messages(MethodView):
    @blp.arguments(MessageSchema)
    @blp.response(202, InstanceSchema)
    @blp.doc(security=[{"apiKey": []}, {"bearer": []}])
    @require_scope("messages:send")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Deliver a message to the one instance waiting for it with these correlation values."""
        if not body["correlation"]:
            raise ValidationError("A message needs correlation values", {"correlation": ["required"]})
        if body["name"] in RESERVED_MESSAGES:
            raise ForbiddenError(
                f"Message '{body['name']}' is delivered by motcua after {RESERVED_MESSAGES[body['name']]}; "
                "it cannot be sent here",
                field="name",
            )
        view: dict[str, Any] = context.engine().send_message(
            body["name"], body["correlation"], body["data"], actor=principal().username
        )
        return view
