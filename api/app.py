"""The application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import text

from engine.facade import Engine

from .errors import register_error_handlers


def create_app(engine: Engine, **config: Any) -> Flask:
    """Return the Flask application serving ``engine``.

    Args:
        engine: the engine facade every view calls.
        config: extra Flask configuration (e.g. ``TESTING=True``).
    """
    app = Flask(__name__)
    app.config.update(JSON_SORT_KEYS=False, **config)
    app.extensions["motcua.engine"] = engine
    register_error_handlers(app)

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, Any], int]:
        try:
            with engine.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return {"status": "unhealthy", "database": f"unreachable: {type(exc).__name__}"}, 503
        return {"status": "ok", "database": "ok"}, 200

    return app
