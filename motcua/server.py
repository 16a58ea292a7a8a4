"""Run the API under gunicorn from ``motcua serve`` (no separate config file to keep in step)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    """gunicorn with its options given in code; each worker builds the app after forking."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api import create_app

        return create_app()


def run_gunicorn(bind: str, *, workers: int = 2, threads: int = 4) -> None:
    """Serve the API on ``bind`` (host:port) until interrupted."""
    _Gunicorn(
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 60,
            "graceful_timeout": 10,
            "accesslog": "-",
            "errorlog": "-",
        }
    ).run()
