"""The application factory: the Flask app with its blueprints, OpenAPI document and error mapping."""

from __future__ import annotations

import http
from typing import Any

from flask import Flask, Response
from flask_smorest import Api as SmorestApi
from flask_smorest.utils import prepare_response
from sqlalchemy import text
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from accounts.service import Accounts
from dossiers.service import DossierService
from engine.facade import Engine
from engine.store import Store
from motcua.settings import Settings
from sandbox_gateway import views as sandbox_gateway
from web import pages as web_pages

from . import (
    attachments,
    auth,
    auth_routes,
    catalogue,
    definitions,
    indicators,
    instances,
    integrators,
    metrics,
    results,
    stats,
    tasks,
    tracking,
    webhooks,
)
from . import dossiers as dossier_routes
from . import payments as payment_routes
from .errors import PROBLEM, ProblemDocumentSchema, http_problem, register_error_handlers

MAX_BODY_BYTES = 20 * 1024 * 1024  # attachments are limited further per file


class Api(SmorestApi):
    """flask-smorest's Api, answering and documenting errors as RFC 9457 problem documents."""

    ERROR_SCHEMA = ProblemDocumentSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return http_problem(error)

    def _register_responses(self) -> None:
        # flask-smorest documents its error responses as application/json; ours are problem documents.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not 100 <= status < 200 and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "An RFC 9457 problem document", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)


def _lending(wsgi_app: Any, store: Store) -> Any:
    """Wrap a WSGI app so that each request's units of work share one pooled connection (a task completion
    runs three: the caller's token, the task's context, the completion)."""

    def app(environ: Any, start_response: Any) -> Any:
        with store.lend_connection():
            return wsgi_app(environ, start_response)

    return app


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    dossiers: DossierService | None = None,
    accounts: Accounts | None = None,
    **config: Any,
) -> Flask:
    """Return the Flask application.

    Args:
        settings: where the database and workflows are (default: from the environment).
        engine, dossiers, accounts: ready-made services (tests pass their own); built from settings if absent.
        config: extra Flask configuration (e.g. ``TESTING=True``).
    """
    from motcua.wiring import build_dossiers, build_engine

    settings = settings or Settings.from_env()
    engine = engine or build_engine(settings)
    dossiers = dossiers or build_dossiers(engine, settings)
    accounts = accounts or Accounts(
        engine.store, engine.clock, credential_cache_seconds=settings.auth_cache_seconds
    )
    app = Flask(__name__, static_folder=None)  # static files belong to the web blueprint
    app.config.update(
        API_TITLE="motcua",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        **config,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep a form's fields in their JSON Schema order
    app.extensions["motcua.engine"] = engine
    app.extensions["motcua.dossiers"] = dossiers
    app.extensions["motcua.accounts"] = accounts
    app.wsgi_app = _lending(app.wsgi_app, engine.store)  # type: ignore[method-assign]
    if settings.proxy_hops:
        hops = settings.proxy_hops  # the client address and scheme are the ones the nearest proxy saw
        proxied = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
        app.wsgi_app = proxied  # type: ignore[method-assign]
    register_error_handlers(app)
    app.before_request(auth.load_principal)
    api = Api(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    # The web pages' session (POST /api/v1/auth/session); writes also need the X-CSRF-Token header.
    session = {"type": "apiKey", "in": "cookie", "name": "motcua_session"}
    api.spec.components.security_scheme("session", session)
    for module in (
        auth_routes,
        catalogue,
        stats,
        indicators,
        instances,
        dossier_routes,
        attachments,
        tasks,
        definitions,
        integrators,
        webhooks,
        results,
        tracking,
    ):
        api.register_blueprint(module.blp)
    stats.install(app)
    metrics.install(app, settings)
    results.install(app, settings)  # result links signed with MOTCUA_LINK_SECRET
    payment_routes.install(app, api, settings, engine, dossiers)
    sandbox_gateway.install(app, settings, engine)  # only when MOTCUA_PAYMENT_SANDBOX is on
    web_pages.install(app)
    _health(app, engine)
    return app


def _health(app: Flask, engine: Engine) -> None:
    @app.get("/healthz")
    def healthz() -> tuple[dict[str, Any], int]:
        try:
            with engine.store.unit_of_work(write=False) as uow:  # one round trip, on the request's connection
                uow.conn.execute(text("SELECT 1"))
        except Exception as exc:
            return {"status": "unhealthy", "database": f"unreachable: {type(exc).__name__}"}, 503
        return {"status": "ok", "database": "ok"}, 200
