"""``GET /metrics``: operational metrics in the Prometheus text format, for a scraper or an admin.

Who may read them: a scraper presenting ``Authorization: Bearer <MOTCUA_METRICS_TOKEN>`` (when that setting
is set), or an admin logged in with a bearer token.  No credentials: 401; someone else: 403.  The endpoint
is not part of the OpenAPI document (like ``/healthz``, it serves operations, not integrators).

Every number is read from the database at scrape time (see ``engine/metrics.py``), so any API process may
answer.  The engine's sources are joined by the dossier domain's (``dossiers/metrics.py``).
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, current_app, request

from dossiers.metrics import dossier_metrics
from engine.errors import ForbiddenError
from engine.metrics import CONTENT_TYPE, ENGINE_SOURCES, Source, collect, exposition
from motcua.settings import Settings
from payments.metrics import payment_metrics

from . import auth, context

blp = Blueprint("metrics", __name__)
EXTENSION = "motcua.metrics_token"  # where ``install`` keeps the setting in app.extensions
ENDPOINT = "metrics.metrics"
SOURCES: tuple[Source, ...] = (*ENGINE_SOURCES, dossier_metrics, payment_metrics)


@blp.get("/metrics")
def metrics() -> Response:
    """Serve the metrics to an admin logged in with a bearer token (the scrape token is served earlier).

    Raises:
        AuthenticationError: no credentials, or unknown ones.
        ForbiddenError: the caller is not an admin, or came with an API key.
    """
    who = auth.principal()
    if who.via != "token" or not who.has("admin"):
        raise ForbiddenError("Metrics are for the scrape token or an admin's bearer token")
    return _scrape()


def _scrape() -> Response:
    engine = context.engine()
    with engine.store.unit_of_work(write=False) as uow:
        body = exposition(collect(uow.conn, engine.now(), SOURCES))
    response = Response(body, status=200, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


def _scraper_gate() -> Response | None:
    """Answer a scrape that presents the metrics token; leave every other request alone."""
    expected = current_app.extensions.get(EXTENSION)
    if request.endpoint != ENDPOINT or not expected:
        return None
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected.encode()):
        return _scrape()
    return None


def install(app: Flask, settings: Settings) -> None:
    """Serve ``/metrics`` on ``app``, accepting ``settings.metrics_token`` (call once in ``create_app``)."""
    app.extensions[EXTENSION] = settings.metrics_token
    app.register_blueprint(blp)
    # The scrape token belongs to no account, so ``auth.load_principal`` would refuse it: check it first.
    app.before_request_funcs.setdefault(None, []).insert(0, _scraper_gate)
