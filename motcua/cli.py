"""The ``motcua`` command line.

Every command takes ``--json`` to print one JSON document on stdout; errors go to stderr with a non-zero
exit code (1: the input or the state is wrong, 2: usage).  This module holds the main group and the
commands on instances; ``motcua/cli_base.py`` holds what every command shares, and the groups of commands in
the other ``cli_*`` modules are registered at the bottom.
"""

from __future__ import annotations

import json
from typing import Any

import click

from .cli_base import _default, _emit, _engine, _json_arg, command
from .cli_calendar import calendar
from .cli_definitions import definitions, deploy, lint
from .cli_users import users
from .cli_worker import worker
from .settings import Settings


@click.group()
def main() -> None:
    """motcua: the one-stop-shop BPMN engine for online public services."""


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@command
def db_upgrade(as_json: bool) -> None:
    """Create or migrate the schema to the latest revision."""
    from motcua.schema import current_revision, upgrade

    engine = _engine()
    upgrade(engine.store.engine)
    revision = current_revision(engine.store.engine)
    _emit(as_json, {"revision": revision}, lambda p: f"schema at revision {p['revision']}")


def _instance_summary(view: dict[str, Any]) -> str:
    lines = [
        f"instance {view['id']}  {view['process_key']}  status={view['status']}"
        f"  business_key={view['business_key'] or '-'}"
    ]
    lines += [
        f"  task {t['id']}  {t['element_id']}  {t['title']}  lane={t['lane'] or '-'}" for t in view["tasks"]
    ]
    lines += [f"  timer {t['element_id']}  due {t['due_at']}  ({t['kind']})" for t in view["timers"]]
    lines += [f"  waits for message {s['message_name']}  {s['correlation']}" for s in view["subscriptions"]]
    lines += [f"  INCIDENT {i['element_id']}: {i['message']}" for i in view["incidents"]]
    return "\n".join(lines)


@main.command()
@click.argument("key")
@click.option("--data", help="Initial process data, a JSON object.")
@click.option("--business-key", help="The business key (e.g. the dossier code).")
@command
def start(key: str, data: str | None, business_key: str | None, as_json: bool) -> None:
    """Start an instance of the latest version of a process."""
    view = _engine().start(key, _json_arg(data, "data"), business_key=business_key, actor="cli")
    _emit(as_json, view, _instance_summary)


@main.command()
@click.option("--instance", "instance_id", help="Only the tasks of this instance.")
@click.option("--lane", help="Only the tasks of this lane.")
@command
def tasks(instance_id: str | None, lane: str | None, as_json: bool) -> None:
    """List ready user tasks."""
    rows = _engine().tasks(instance_id=instance_id, lane=lane)
    _emit(
        as_json,
        rows,
        lambda rs: (
            "\n".join(
                f"{r['id']}\t{r['instance_id']}\t{r['element_id']}\t{r['title']}\t{r['lane'] or '-'}"
                for r in rs
            )
            or "no ready tasks"
        ),
    )


@main.command()
@click.argument("task_id")
@click.option("--data", help="The task's form data, a JSON object.")
@click.option("--by", "actor", default="cli", help="Who completes the task.")
@command
def complete(task_id: str, data: str | None, actor: str, as_json: bool) -> None:
    """Complete a user task."""
    view = _engine().complete_task(task_id, _json_arg(data, "data"), actor=actor)
    _emit(as_json, view, _instance_summary)


@main.command()
@click.argument("name")
@click.option("--correlation", help="Correlation values, a JSON object (e.g. business_key).")
@click.option("--data", help="The message payload, a JSON object.")
@command
def message(name: str, correlation: str | None, data: str | None, as_json: bool) -> None:
    """Deliver a message to the instance waiting for it."""
    view = _engine().send_message(
        name, _json_arg(correlation, "correlation"), _json_arg(data, "data"), actor="cli"
    )
    _emit(as_json, view, _instance_summary)


@main.command()
@click.argument("instance_id")
@command
def show(instance_id: str, as_json: bool) -> None:
    """Show the state, data, pending timers and history of one instance.

    Each timer (a BPMN timer or a service retry waiting for its next attempt) is listed with its due time
    in Asia/Ho_Chi_Minh and in UTC, whether it is due but not fired yet, and which worker holds it, if any.
    """
    from datetime import UTC
    from zoneinfo import ZoneInfo

    view = _engine().show(instance_id)
    vn = ZoneInfo("Asia/Ho_Chi_Minh")

    def timer(t: dict[str, Any]) -> str:
        due, until = t["due_at"], t["lease_until"]
        lease = f"leased by {t['claimed_by']} until {until.astimezone(vn):%H:%M:%S}" if t["leased"] else ""
        return (
            f"  {t['element_id']}  {t['kind']}  due {due.astimezone(vn):%Y-%m-%d %H:%M:%S} Asia/Ho_Chi_Minh"
            f" = {due.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC  {'DUE, not fired' if t['due'] else 'waiting'}"
            f"  {lease}"
        ).rstrip()

    def human(v: dict[str, Any]) -> str:
        history = "\n".join(
            f"  {h['at']}  {h['actor']}  {h['action']}  {h['element_id'] or ''}" for h in v["history"]
        )
        data = json.dumps(v["data"], default=_default, ensure_ascii=False)
        timers = "\n".join(timer(t) for t in v["timers"]) or "  none pending"
        head = _instance_summary({**v, "timers": []})  # the timers get their own section below
        return f"{head}\n  data {data}\ntimers:\n{timers}\nhistory:\n{history}"

    _emit(as_json, view, human)


@main.command("fire-timers")
@command
def fire_timers(as_json: bool) -> None:
    """Fire every due timer (and due service retry) once, now."""
    results = _engine().fire_due_timers(actor="cli")
    _emit(
        as_json,
        results,
        lambda rs: (
            "\n".join(f"{r['instance_id']}\t{r['element_id']}\t{r['kind']}\t{r['outcome']}" for r in rs)
            or "nothing due"
        ),
    )


@main.command()
@click.option("--instance", "instance_id", help="Only the incidents of this instance.")
@command
def incidents(instance_id: str | None, as_json: bool) -> None:
    """List open incidents (tasks that failed for good)."""
    rows = _engine().incidents(instance_id)
    _emit(
        as_json,
        rows,
        lambda rs: (
            "\n".join(
                f"{r['instance_id']}\t{r['element_id']}\t{r['kind']}\t{r['attempts']}\t{r['message']}"
                for r in rs
            )
            or "no open incidents"
        ),
    )


@main.command()
@click.argument("instance_id")
@click.option("--by", "actor", default="admin", help="Who retries.")
@command
def retry(instance_id: str, actor: str, as_json: bool) -> None:
    """Retry the failed tasks of an instance and resolve its incidents."""
    view = _engine().retry_incidents(instance_id, actor=actor)
    _emit(as_json, view, _instance_summary)


@main.command()
@click.option(
    "--demo", is_flag=True, help="Also add demo users (once accounts exist) and print their logins."
)
@command
def seed(demo: bool, as_json: bool) -> None:
    """Deploy the bundled BPMN and load the procedure catalogue (each bound BPMN checked); idempotent."""
    from .bundle import bundled_bpmn
    from .wiring import build_dossiers

    settings = Settings.from_env()
    documents = bundled_bpmn(settings.workflows_dir)
    results = _engine().deploy(documents, deployed_by="seed") if documents else []
    service = build_dossiers(_engine(), settings)
    procedures = service.seed_catalogue(settings.workflows_dir)
    calendar_days = service.seed_calendar()
    demo_users = _accounts().ensure_demo_users() if demo else []
    payload = {
        "definitions": results,
        "procedures": procedures,
        "calendar_days_added": calendar_days,
        "demo_users": demo_users,
    }

    def human(p: dict[str, Any]) -> str:
        lines = [
            f"{r['key']}\tv{r['version']}\t{'deployed' if r['created'] else 'unchanged'}"
            for r in p["definitions"]
        ]
        lines += [f"{r['code']}\tlevel {r['level']}\t{r['bpmn']}" for r in p["procedures"]]
        lines += [
            f"demo login: {u['username']} / {u.get('password', '(unchanged)')}  ({', '.join(u['roles'])})"
            for u in p["demo_users"]
        ]
        return "\n".join(lines) or "no bundled workflows"

    _emit(as_json, payload, human)


@main.command()
@click.option("--host", default=None, help="Interface to listen on (default MOTCUA_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default MOTCUA_PORT or 8000).")
@click.option("--workers", type=int, default=2, show_default=True, help="Worker processes (granian).")
@command
def serve(host: str | None, port: int | None, workers: int, as_json: bool) -> None:
    """Serve the HTTP API on HOST:PORT with granian (each worker process builds its own app)."""
    from .server import run_server

    settings = Settings.from_env()
    host, port = host or settings.host, port or settings.port
    _emit(as_json, {"listening": f"http://{host}:{port}"}, lambda p: f"motcua listening on {p['listening']}")
    run_server(host, port, workers=workers)


@main.command("deliver-webhooks")
@click.option("--limit", type=int, default=50, show_default=True)
@command
def deliver_webhooks(limit: int, as_json: bool) -> None:
    """Send due webhook deliveries once (safe to run in several processes at the same time)."""
    from dossiers.webhooks import deliver_due

    engine = _engine()
    results = deliver_due(engine.store, engine.clock, limit=limit)
    _emit(
        as_json,
        results,
        lambda rs: (
            "\n".join(
                f"{r['id']}\t{r['event']}\t{r['outcome']}\t{r['status'] or r['error'] or ''}" for r in rs
            )
            or "nothing due"
        ),
    )


def _accounts() -> Any:
    from accounts.service import Accounts

    engine = _engine()
    return Accounts(engine.store, engine.clock)


main.add_command(deploy)
main.add_command(lint)
main.add_command(definitions)
main.add_command(calendar)
main.add_command(users)
main.add_command(worker)


if __name__ == "__main__":  # pragma: no cover
    main()
