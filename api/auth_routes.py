"""POST /api/v1/auth/token: username + password -> bearer token; DELETE revokes it."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from . import context
from .auth import principal

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Log in and out")


class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_at = fields.DateTime(required=True)
    username = fields.String(required=True)
    full_name = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    agency_code = fields.String(allow_none=True)


@blp.route("/token")
class Token(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    def post(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Exchange a username and password for a bearer token (throttled after repeated failures)."""
        accounts = context.accounts()
        token, expires_at, who = accounts.login(
            credentials["username"], credentials["password"], remote=request.remote_addr or "unknown"
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_at": expires_at,
            "username": who.username,
            "full_name": who.full_name,
            "roles": sorted(who.roles),
            "agency_code": who.agency_code,
        }

    @blp.response(204)
    @blp.doc(security=[{"bearer": []}])
    def delete(self) -> None:
        """Revoke the bearer token of this request (log out)."""
        principal()
        token = request.headers["Authorization"].partition(" ")[2].strip()
        context.accounts().revoke_token(token)
