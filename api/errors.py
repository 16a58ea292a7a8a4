"""Map domain errors and HTTP errors to RFC 9457 problem documents, in one place."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, json, request
from marshmallow import INCLUDE, Schema, fields
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from engine.errors import (
    AuthenticationError,
    ConflictError,
    DefinitionError,
    ForbiddenError,
    HandlerError,
    MotcuaError,
    NotFoundError,
    ScriptError,
    ThrottledError,
    ValidationError,
)

PROBLEM = "application/problem+json"


class ProblemDocumentSchema(Schema):
    """An RFC 9457 problem document (``application/problem+json``); domain details ride along."""

    class Meta:
        unknown = INCLUDE

    type = fields.String()
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    code = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    filenames = fields.List(fields.String(), metadata={"description": "the files refused"})


STATUS: list[tuple[type[MotcuaError], int]] = [
    (ValidationError, 422),
    (DefinitionError, 422),
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    (ThrottledError, 429),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ScriptError, 422),
    (HandlerError, 502),
    (MotcuaError, 400),
]


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """Return an ``application/problem+json`` response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def status_of(error: MotcuaError) -> int:
    """Return the HTTP status of a domain error (most specific class first)."""
    return next(status for cls, status in STATUS if isinstance(error, cls))


def domain_problem(error: MotcuaError) -> Response:
    """Turn a domain error into its problem document."""
    # Details never override the problem's own members (type, title, status, detail, code).
    reserved = {"errors", "type", "title", "status", "detail", "code"}
    details = {k: v for k, v in error.details.items() if k not in reserved}
    extra: dict[str, Any] = {**details, "code": error.code}
    if isinstance(error, ValidationError):
        extra["errors"] = error.errors
    headers = {}
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="motcua"'
    if isinstance(error, ThrottledError):
        headers["Retry-After"] = str(error.retry_after)
    status = status_of(error)
    return problem(status, error.code.replace("_", " ").capitalize(), error.message, headers, **extra)


def http_problem(error: HTTPException) -> Response:
    """Turn an HTTP exception (including webargs' 422 with field messages) into a problem document."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    extra: dict[str, Any] = {}
    messages = data.get("messages") if isinstance(data, dict) else None
    detail: Any
    if messages:
        extra["errors"] = _flatten(messages)
        detail = "The request has invalid fields"
    elif isinstance(error, RequestEntityTooLarge):
        detail = "The request body is larger than this endpoint accepts"
    else:
        detail = data.get("message") if isinstance(data, dict) and data.get("message") else error.description
    return problem(status, error.name, str(detail or error.name), **extra)


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs nests messages by location and field; flatten to ``{"field.sub": [...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = str(key) if key not in ("json", "query", "form", "files", "headers", "view_args") else ""
            path = ".".join(p for p in (prefix, name) if p)
            flat.update(_flatten(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_body"] = list(messages)
    else:
        flat[prefix or "_body"] = [str(messages)]
    return flat


def refuse_nul_bytes() -> None:
    """Refuse a NUL byte anywhere in the path, query, form or JSON body (databases cannot store it).

    Raises:
        ValidationError: naming where the NUL byte was.
    """
    places = {"path": request.path, "query": request.query_string.decode("latin-1")}
    if "%00" in places["query"] or "\x00" in places["path"]:
        raise ValidationError("The request contains a NUL byte", {"_request": ["NUL bytes are not allowed"]})
    if request.mimetype == "application/json" and b"\\u0000" in request.get_data(cache=True):
        raise ValidationError(
            "The request body contains a NUL byte", {"_body": ["NUL bytes are not allowed"]}
        )
    form = request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
    if form and any("\x00" in value for value in request.form.values()):
        raise ValidationError("A form field contains a NUL byte", {"_form": ["NUL bytes are not allowed"]})


# Seconds a client is asked to wait before retrying while the database cannot be reached.
DATABASE_RETRY_AFTER = 2


def database_unavailable(error: Exception) -> Response:
    """The database could not be reached or dropped the connection (a restart, a failover): nothing of the
    request was committed, so the client may send it again (with the same Idempotency-Key) after a moment."""
    current_app.logger.warning("database unavailable: %s", str(error).splitlines()[0][:300])
    return problem(
        503,
        "Service unavailable",
        "The database cannot be reached at the moment; nothing was saved. Try again shortly.",
        {"Retry-After": str(DATABASE_RETRY_AFTER)},
        code="database_unavailable",
    )


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that turn domain errors into problem documents."""
    app.register_error_handler(MotcuaError, domain_problem)
    app.register_error_handler(OperationalError, database_unavailable)
    app.register_error_handler(InterfaceError, database_unavailable)
    app.before_request(refuse_nul_bytes)
