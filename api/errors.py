"""Map the domain error tree to RFC 9457 problem documents, in one place."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from engine.errors import (
    ConflictError,
    DefinitionError,
    HandlerError,
    MotcuaError,
    NotFoundError,
    ScriptError,
    ValidationError,
)

STATUS: list[tuple[type[MotcuaError], int]] = [
    (ValidationError, 422),
    (DefinitionError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ScriptError, 422),
    (HandlerError, 502),
    (MotcuaError, 400),
]


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """Return an ``application/problem+json`` response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json")


def status_of(error: MotcuaError) -> int:
    """Return the HTTP status of a domain error (most specific class first)."""
    return next(status for cls, status in STATUS if isinstance(error, cls))


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that turn domain and HTTP errors into problem documents."""

    @app.errorhandler(MotcuaError)
    def on_domain_error(error: MotcuaError) -> Response:
        details = {k: v for k, v in error.details.items() if k != "errors"}
        extra: dict[str, Any] = {"code": error.code, **details}
        if isinstance(error, ValidationError):
            extra["errors"] = error.errors
        return problem(status_of(error), error.code.replace("_", " ").capitalize(), error.message, **extra)

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException) -> Response:
        return problem(error.code or 500, error.name, error.description or error.name)
