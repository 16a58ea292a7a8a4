"""Run the API under granian from ``motcua serve``: its HTTP server in Rust, the Flask app in each worker.

granian parses HTTP, keeps connections alive and queues requests in Rust, outside Python's interpreter
lock; a worker process's Python threads only run the app.  Against gunicorn's threaded workers on the task
page's requests it measured 15-20 % less CPU per request and a lower median under load
(``docs/PERFORMANCE.md``).  The master process binds the socket, forks the workers (with the app's modules
already imported, so that their pages stay shared) and starts a new one when one dies.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from .settings import Settings

# What a worker started besides the app: its background jobs, stopped when the worker stops serving.
_RUNNING: dict[str, Any] = {}


def run_server(host: str, port: int, *, workers: int = 2, threads: int | None = None) -> None:
    """Serve the API on host:port until interrupted (SIGINT or SIGTERM: the workers finish what they serve).

    Args:
        host, port: where to listen.
        workers: worker processes; each runs its own app, so this is what uses several cores.
        threads: threads per worker running the app (default ``MOTCUA_THREADS``).  They overlap waits on the
            database, not Python work, which one worker's interpreter runs one thread at a time; requests
            beyond them wait in granian's queue without holding the interpreter.
    """
    import gc

    from granian.server import MPServer

    import api  # noqa: F401  (the code only: each worker still builds its own app after forking)

    settings = Settings.from_env()
    # Workers fork with the application's modules imported (a restarted worker does not import them again)
    # and with those objects frozen out of the garbage collector's walks, so shared pages stay shared.
    gc.freeze()
    server = MPServer(**server_options(host, port, workers, threads or settings.threads, settings.access_log))
    server.serve(spawn_target=_serve_worker)


def server_options(host: str, port: int, workers: int, threads: int, access_log: bool) -> dict[str, Any]:
    """The granian configuration of ``motcua serve``.

    HTTP/1.1 with keep-alive (a reverse proxy or a page reuses its connections instead of paying a new one
    per request).  A worker that dies is replaced.  On SIGTERM each worker gets 10 s to finish the requests
    it holds.  The access log (one line per request on stderr) can be switched off with
    ``MOTCUA_ACCESS_LOG=off`` where the reverse proxy in front logs the requests already.
    """
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    return {
        "target": "motcua.server:worker_app",
        "factory": True,
        "interface": Interfaces.WSGI,
        "address": host,
        "port": port,
        "workers": workers,
        "blocking_threads": threads,
        "http": HTTPModes.http1,
        "http1_settings": HTTP1Settings(keep_alive=True, header_read_timeout=30_000),
        "websockets": False,
        "respawn_failed_workers": True,
        "respawn_interval": 1.0,
        "workers_kill_timeout": 10,
        "log_access": access_log,
        "log_access_format": '%(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms',
    }


def worker_app() -> Any:
    """granian's app factory, run in each worker after it forks: the app, then the worker's own set-up."""
    from api import create_app

    app = create_app()
    start_worker(app)
    return app


def start_worker(app: Any) -> None:
    """Set up a served worker around its app.

    First the objects the app was built from are frozen out of the garbage collector's reach
    (``gc.freeze``): they live as long as the worker, and a full collection that walked them all would pause
    whichever request it lands on; then the collector's thresholds are set (``MOTCUA_GC_THRESHOLDS``,
    ``tune_collector``).  The worker stops itself if its master dies (a worker left behind would keep
    serving old code on the port).  Unless ``MOTCUA_SCHEDULER=off``, the background jobs run beside the
    requests: every worker runs them, and the jobs claim their rows with locks and leases, so workers share
    the work instead of repeating it (see ``motcua/scheduler.py``).
    """
    import gc

    from .settings import tune_collector

    gc.freeze()
    settings = Settings.from_env()
    tune_collector(settings)
    _watch_master(_RUNNING.get("master", os.getppid()))
    if not settings.scheduler:
        return
    from .scheduler import Scheduler

    jobs_log = logging.getLogger("motcua.worker")  # job runs go to the server's log, on stderr
    if not jobs_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
        jobs_log.addHandler(handler)
    jobs_log.setLevel(logging.INFO)
    jobs_log.propagate = False
    scheduler = Scheduler(app.extensions["motcua.engine"], app.extensions["motcua.dossiers"], settings)
    scheduler.start()
    _RUNNING["scheduler"] = scheduler


def stop_worker() -> None:
    """Let the worker's background jobs finish their current item."""
    scheduler = _RUNNING.pop("scheduler", None)
    if scheduler is not None:
        scheduler.stop(wait=True)


def _serve_worker(*args: Any, **kwargs: Any) -> None:
    """A granian WSGI worker (``MPServer._spawn_wsgi_worker``) that stops its jobs when it stops serving: a
    worker process ends with ``os._exit``, which runs no exit handlers."""
    from granian.server import MPServer

    # The master as the worker starts: it may die while the app is still being loaded, and the worker, then
    # already handed to another parent, must still see that its master is gone (``_watch_master``).
    _RUNNING["master"] = os.getppid()
    try:
        MPServer._spawn_wsgi_worker(*args, **kwargs)
    finally:
        stop_worker()


def _watch_master(master: int, every: float = 1.0, grace: float = 20.0) -> None:
    """Stop this worker (SIGTERM: it finishes what it serves) once its parent process ``master`` is gone.

    The signal is sent again every ``every`` seconds: one that arrives before granian has set the worker's own
    handlers (a worker still starting) would be lost.  A worker still there ``grace`` seconds later (granian
    gives its requests 10) ends at once.
    """

    def watch() -> None:
        while os.getppid() == master:
            time.sleep(every)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="motcua-master-watch", daemon=True).start()
