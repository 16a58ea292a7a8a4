"""POST /api/v1/auth/token: username + password -> bearer token; DELETE revokes it."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Response, g, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from . import context
from .auth import CSRF_COOKIE, SESSION_COOKIE, principal

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


class SessionSchema(Schema):
    username = fields.String(required=True)
    full_name = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    agency_code = fields.String(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    csrf_token = fields.String(
        allow_none=True, metadata={"description": "echo it in X-CSRF-Token on requests that change things"}
    )


def _who() -> dict[str, Any]:
    who = principal()
    return {
        "username": who.username,
        "full_name": who.full_name,
        "roles": sorted(who.roles),
        "agency_code": who.agency_code,
    }


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


@blp.route("/session")
class Session(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, SessionSchema)
    def post(self, credentials: dict[str, Any]) -> Response:
        """Log in for the web pages: the token goes into an HttpOnly, SameSite=Strict cookie, and a CSRF token
        into a readable cookie (and the body) that requests changing something echo in ``X-CSRF-Token``."""
        accounts = context.accounts()
        token, expires_at, who = accounts.login(
            credentials["username"], credentials["password"], remote=request.remote_addr or "unknown"
        )
        csrf = secrets.token_urlsafe(32)
        body = {
            "username": who.username,
            "full_name": who.full_name,
            "roles": sorted(who.roles),
            "agency_code": who.agency_code,
            "expires_at": expires_at.isoformat(),
            "csrf_token": csrf,
        }
        response = jsonify(body)
        for name, value, http_only in ((SESSION_COOKIE, token, True), (CSRF_COOKIE, csrf, False)):
            response.set_cookie(
                name,
                value,
                expires=expires_at,
                httponly=http_only,
                samesite="Strict",
                secure=request.is_secure,
            )
        return response

    @blp.response(200, SessionSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self) -> dict[str, Any]:
        """Who is logged in (401 when nobody is)."""
        return {**_who(), "csrf_token": request.cookies.get(CSRF_COOKIE)}

    @blp.response(204)
    def delete(self) -> Response:
        """Log out of the web pages: revoke the session's token and clear its cookies (harmless when logged
        out)."""
        token = getattr(g, "session_token", None)
        if token:
            context.accounts().revoke_token(token)
        response = Response(status=204)
        response.delete_cookie(SESSION_COOKIE, path="/", samesite="Strict")
        response.delete_cookie(CSRF_COOKIE, path="/", samesite="Strict")
        return response
