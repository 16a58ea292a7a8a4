"""The portal's visitor counter (public): online now, today, this week, this month, total.

``install(app)`` adds the ``after_request`` hook counting public GETs of the catalogue and of this endpoint.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from dossiers.visits import DAILY_SECRET, DailySecret, record_visit, visit_counts
from engine.facade import Engine

from . import context

log = logging.getLogger(__name__)

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/api/v1/stats",
    description="Thống kê truy cập: the portal's anonymous visitor counter",
)
COUNTED_PREFIXES = ("/api/v1/procedures", "/api/v1/stats/visits")


class VisitStatsSchema(Schema):
    online_now = fields.Integer(
        required=True, metadata={"description": "distinct visitors seen in the last 5 minutes"}
    )
    today = fields.Integer(required=True, metadata={"description": "visitors today (Asia/Ho_Chi_Minh)"})
    this_week = fields.Integer(
        required=True, metadata={"description": "visitor-days this ISO week (from Monday), today included"}
    )
    this_month = fields.Integer(
        required=True, metadata={"description": "visitor-days this calendar month, today included"}
    )
    total = fields.Integer(required=True, metadata={"description": "visitor-days since counting began"})


@blp.route("/visits")
class Visits(MethodView):
    @blp.response(200, VisitStatsSchema)
    def get(self) -> dict[str, int]:
        """Count the portal's visitors: online now, today, this week, this month, total.

        Days are calendar days in Asia/Ho_Chi_Minh; weeks start on Monday. No personal data is kept: a
        visitor is a keyed SHA-256 hash (HMAC) of the IP address and User-Agent under a secret that is random
        per day, held only in memory and replaced after midnight, so the same person is a new visitor each
        day. Hence this week, this month and total count **visitor-days**, not distinct people. Counted:
        successful GET requests of the public catalogue (`/api/v1/procedures...`) and of this endpoint
        (this request included).
        """
        _record(context.engine())
        return visit_counts(context.engine().store, context.engine().clock.now())


def _counted(response: Response) -> bool:
    path = request.path
    return (
        request.method == "GET"
        and response.status_code < 400
        and not getattr(g, "visit_recorded", False)
        and any(path == prefix or path.startswith(prefix + "/") for prefix in COUNTED_PREFIXES)
    )


def _record(engine: Engine) -> None:
    """Count this request's visitor once; a failure is logged, never shown to the visitor."""
    g.visit_recorded = True
    try:
        record_visit(
            engine.store,
            request.remote_addr or "",
            request.headers.get("User-Agent", ""),
            engine.clock.now(),
            secret=current_app.extensions.get("motcua.visit_secret", DAILY_SECRET),
        )
    except Exception:
        log.warning("could not record a visit", exc_info=True)


def _after_request(response: Response) -> Response:
    if _counted(response):
        _record(context.engine())
    return response


def install(app: Flask, secret: DailySecret | None = None) -> None:
    """Count visits of the public catalogue and of the stats endpoint (call once in ``create_app``).

    Args:
        secret: the daily secret to hash visitors with (default: the one the host's workers share; under
            ``TESTING`` one of this app's own, so that tests leave nothing in shared memory).
    """
    if secret is None and app.testing:
        secret = DailySecret(shared_dir=None)
    if secret is not None:
        app.extensions["motcua.visit_secret"] = secret
    if not app.extensions.get("motcua.visits"):
        app.extensions["motcua.visits"] = True
        app.after_request(_after_request)
