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


def _start_scheduler(worker: Any) -> None:
    """gunicorn ``post_worker_init``: run the background jobs in this worker, beside its requests.

    Every worker runs them: the jobs claim their rows with locks and leases, so workers share the work
    instead of repeating it (see ``motcua/scheduler.py``).
    """
    from .scheduler import Scheduler
    from .settings import Settings

    settings = Settings.from_env()
    if not settings.scheduler:
        return
    import logging

    jobs_log = logging.getLogger("motcua.worker")  # job runs go to gunicorn's error log
    jobs_log.handlers = list(worker.log.error_log.handlers)
    jobs_log.setLevel(logging.INFO)
    jobs_log.propagate = False
    app = worker.wsgi
    scheduler = Scheduler(app.extensions["motcua.engine"], app.extensions["motcua.dossiers"], settings)
    scheduler.start()
    worker.motcua_scheduler = scheduler


def _stop_scheduler(_server: Any, worker: Any) -> None:
    """gunicorn ``worker_exit``: let the jobs finish their current item."""
    scheduler = getattr(worker, "motcua_scheduler", None)
    if scheduler is not None:
        scheduler.stop(wait=True)


def run_gunicorn(bind: str, *, workers: int = 2, threads: int = 4) -> None:
    """Serve the API on ``bind`` (host:port) until interrupted."""
    _Gunicorn(
        {
            "post_worker_init": _start_scheduler,
            "worker_exit": _stop_scheduler,
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
