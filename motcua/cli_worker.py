"""The ``motcua worker`` command: run the background jobs (timers, retries, webhooks, deadlines, claims).

Registered on the main group at the bottom of ``motcua/cli.py``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from typing import Any

import click

from engine.errors import MotcuaError

from .cli_base import _fail
from .settings import Settings, tune_collector


@click.command()
@click.option(
    "--jobs",
    default=None,
    help="Comma-separated jobs to run (default: all of fire_timers, run_retries, deliver_webhooks, "
    "dossier_deadlines, release_claims, reconcile_payments).",
)
@click.option(
    "--tick", type=float, default=None, help="Seconds between looks (default MOTCUA_SCHEDULER_TICK or 1)."
)
@click.option(
    "--lease", type=float, default=None, help="Seconds a claimed wake-up stays ours (MOTCUA_TIMER_LEASE)."
)
@click.option("--worker-id", default=None, help="Name in logs and job_runs (default host:pid).")
@click.option("--once", is_flag=True, help="Run each job once, print what it did, and exit.")
@click.option("-v", "--verbose", is_flag=True, help="Also log runs that found nothing to do.")
@click.option("--json", "as_json", is_flag=True, help="--once: print one JSON document; else log JSON lines.")
def worker(
    jobs: str | None,
    tick: float | None,
    lease: float | None,
    worker_id: str | None,
    once: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Run the background jobs until stopped (SIGTERM or Ctrl-C finish the current item first).

    Any number of workers may run at once, on one machine or many: each timer fires exactly once.
    """
    from dataclasses import replace

    from .scheduler import build_scheduler

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonLines() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # Our own line per job run says what happened; APScheduler's "skipped: already running" is the
    # expected overlap of a job that works for a whole tick, and SpiffWorkflow logs every task step.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("spiff").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        overrides: dict[str, Any] = {}
        if tick is not None:
            overrides["scheduler_tick"] = tick
        if lease is not None:
            overrides["timer_lease"] = lease
        if any(value <= 0 for value in overrides.values()):
            raise click.BadParameter("--tick and --lease must be positive")
        settings = replace(settings, **overrides)
        tune_collector(settings)
        chosen = [name.strip() for name in jobs.split(",") if name.strip()] if jobs else None
        scheduler = build_scheduler(
            settings, worker=worker_id, jobs=chosen, faults=os.environ.get("MOTCUA_FAULTS")
        )
    except MotcuaError as exc:
        _fail(as_json, exc)
        return
    if once:
        outcomes = scheduler.run_all_once()
        if as_json:
            report = {name: {"items": o.items, **o.detail} for name, o in outcomes.items()}
            click.echo(json.dumps({"worker": scheduler.worker, "jobs": report}, ensure_ascii=False, indent=2))
        else:
            for name, outcome in outcomes.items():
                click.echo(f"{name}\t{outcome.items}\t{outcome.summary()}")
        return

    def stop(signum: int, _frame: Any) -> None:
        logging.getLogger("motcua.worker").info("signal %s: finishing the current item", signum)
        scheduler.stop(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scheduler.start(blocking=True)


class _JsonLines(logging.Formatter):
    """One JSON object per log line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
