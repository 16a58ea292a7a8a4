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
    instead of repeating it (see ``motcua/scheduler.py``).  First the objects the app was built from are
    frozen out of the garbage collector's reach (``gc.freeze``): they live as long as the worker, and a full
    collection that walked them all would pause whichever request it lands on; then the collector's
    thresholds are set (``MOTCUA_GC_THRESHOLDS``, ``tune_collector``).
    """
    import gc

    from .scheduler import Scheduler
    from .settings import Settings, tune_collector

    gc.freeze()
    settings = Settings.from_env()
    tune_collector(settings)
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


def run_gunicorn(bind: str, *, workers: int = 2, threads: int | None = None) -> None:
    """Serve the API on ``bind`` (host:port) until interrupted.

    Args:
        bind: host:port.
        workers: worker processes; each runs its own app, so this is what uses several cores.
        threads: request threads per worker (default ``MOTCUA_THREADS``): they overlap waits on the database,
            not Python work, which one worker's interpreter runs one thread at a time.
    """
    import gc

    import api  # noqa: F401  (the code only: each worker still builds its own app after forking)

    from .settings import Settings

    # Workers fork with the application's modules imported (a restarted worker does not import them again)
    # and with those objects frozen out of the garbage collector's walks, so shared pages stay shared.
    gc.freeze()
    settings = Settings.from_env()
    _Gunicorn(gunicorn_options(bind, workers, threads or settings.threads, settings.access_log)).run()


def gunicorn_options(bind: str, workers: int, threads: int, access_log: bool) -> dict[str, Any]:
    """The gunicorn configuration of ``motcua serve``.

    Keep-alive connections stay open for 5 s (a reverse proxy or a page reuses them instead of paying a new
    connection per request).  The access log (one line per request on stdout) can be switched off with
    ``MOTCUA_ACCESS_LOG=off`` where the reverse proxy in front logs the requests already.
    """
    return {
        "post_worker_init": _start_scheduler,
        "worker_exit": _stop_scheduler,
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "keepalive": 5,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
    }
