"""The ``motcua`` command line.

Every command takes ``--json`` to print one JSON document on stdout; errors go to stderr with a non-zero
exit code (1: the input or the state is wrong, 2: usage).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from engine.errors import MotcuaError, ValidationError

from .settings import Settings

EXIT_ERROR = 1


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def _emit(as_json: bool, payload: Any, human: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(payload, default=_default, ensure_ascii=False, indent=2))
    else:
        click.echo(human(payload))


def command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the ``--json`` option and map domain errors to stderr and exit code 1."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
    @functools.wraps(func)
    def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> None:
        try:
            func(*args, as_json=as_json, **kwargs)
        except (OperationalError, ProgrammingError) as exc:
            text = str(exc.orig).strip()
            missing = "no such table" in text or ("relation" in text and "does not exist" in text)
            hint = " (run 'motcua db upgrade' first)" if missing else ""
            _fail(as_json, MotcuaError(f"The database cannot be used: {text}{hint}"))
        except MotcuaError as exc:
            _fail(as_json, exc)

    return wrapper


def _fail(as_json: bool, exc: MotcuaError) -> None:
    """Report a domain error on stderr (as JSON with --json) and exit with code 1."""
    if as_json:
        click.echo(json.dumps({"error": exc.to_dict()}, default=_default, ensure_ascii=False), err=True)
    else:
        click.echo(f"error: {exc}", err=True)
        for field, messages in getattr(exc, "errors", {}).items():
            click.echo(f"  {field}: {'; '.join(messages)}", err=True)
    sys.exit(EXIT_ERROR)


def _json_arg(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"--{name} is not valid JSON: {exc.msg} at column {exc.colno}",
            {name: [f"invalid JSON: {exc.msg}"]},
        ) from exc


@functools.cache
def _engine() -> Any:
    from .wiring import build_engine

    return build_engine(Settings.from_env())


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


def _read_files(paths: tuple[str, ...]) -> list[tuple[str, bytes]]:
    documents = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise ValidationError(f"{name}: no such file", {"file": [f"{name} does not exist"]})
        documents.append((str(path), path.read_bytes()))
    return documents


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--by", "deployed_by", default="cli", help="Who deploys (recorded with each version).")
@command
def deploy(files: tuple[str, ...], deployed_by: str, as_json: bool) -> None:
    """Validate and deploy BPMN files; print key, version and checksum per process."""
    results = _engine().deploy(_read_files(files), deployed_by=deployed_by)
    _emit(
        as_json,
        results,
        lambda rows: "\n".join(
            f"{r['key']}\tv{r['version']}\t{r['sha256']}\t{'deployed' if r['created'] else 'unchanged'}"
            for r in rows
        ),
    )


@main.command()
@click.argument("file")
@click.option("--level", type=click.IntRange(1, 4), help="Also check conformance to service level N (1-4).")
@command
def lint(file: str, level: int | None, as_json: bool) -> None:
    """Validate a BPMN file (and its conformance to a level); exit 1 with the list of problems.

    Call activities resolve to deployed processes, else to the bundled fragments under workflows/bpmn.
    """
    from .bundle import bundle_resolver

    fallback = bundle_resolver(Settings.from_env().workflows_dir)
    problems = _engine().lint(_read_files((file,)), level=level, fallback=fallback)
    _emit(
        as_json,
        {"file": file, "problems": problems},
        lambda p: (
            "\n".join(
                f"{x.get('file')}:{x.get('line') or '?'}: [{x.get('element_id') or '-'}] {x['message']}"
                for x in p["problems"]
            )
            or f"{file}: ok"
        ),
    )
    if problems:
        sys.exit(EXIT_ERROR)


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
@click.option("--key", help="Only the versions of this process.")
@command
def definitions(key: str | None, as_json: bool) -> None:
    """List deployed process definition versions."""
    rows = _engine().definitions(key)
    _emit(
        as_json,
        rows,
        lambda rs: (
            "\n".join(
                f"{r['key']}\tv{r['version']}\t{r['sha256'][:12]}\t{r['deployed_at']}\t{r['deployed_by']}"
                for r in rs
            )
            or "no definitions"
        ),
    )


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
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn worker processes.")
@command
def serve(host: str | None, port: int | None, workers: int, as_json: bool) -> None:
    """Serve the HTTP API on HOST:PORT with gunicorn (each worker builds its own app)."""
    from .server import run_gunicorn

    settings = Settings.from_env()
    host, port = host or settings.host, port or settings.port
    _emit(as_json, {"listening": f"http://{host}:{port}"}, lambda p: f"motcua listening on {p['listening']}")
    run_gunicorn(f"{host}:{port}", workers=workers)


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


@main.group()
def calendar() -> None:
    """The admin table of extra days off and make-up working days."""


def _accounts() -> Any:
    from accounts.service import Accounts

    engine = _engine()
    return Accounts(engine.store, engine.clock)


def _dossiers() -> Any:
    from .wiring import build_dossiers

    return build_dossiers(_engine(), Settings.from_env())


@calendar.command("list")
@command
def calendar_list(as_json: bool) -> None:
    """List the declared days."""
    rows = _dossiers().calendar_days()
    _emit(
        as_json,
        rows,
        lambda rs: (
            "\n".join(f"{r['day']}\t{'làm việc' if r['working'] else 'nghỉ'}\t{r['note']}" for r in rs)
            or "no declared days"
        ),
    )


@calendar.command("set")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--working/--off", required=True, help="A make-up working day, or an extra day off.")
@click.option("--note", required=True, help="The announcement it follows.")
@click.option("--by", "actor", default="admin")
@command
def calendar_set(day: datetime, working: bool, note: str, actor: str, as_json: bool) -> None:
    """Declare DAY (YYYY-MM-DD) a working day or a day off."""
    row = _dossiers().set_calendar_day(day.date(), working=working, note=note, actor=actor)
    _emit(as_json, row, lambda r: f"{r['day']} {'working' if r['working'] else 'off'}: {r['note']}")


@calendar.command("unset")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@command
def calendar_unset(day: datetime, as_json: bool) -> None:
    """Remove the declaration of DAY."""
    _dossiers().unset_calendar_day(day.date())
    _emit(as_json, {"day": day.date()}, lambda r: f"{r['day']} removed")


from .cli_users import users  # noqa: E402 - cli_users imports this module's helpers
from .cli_worker import worker  # noqa: E402 - cli_worker imports this module's helpers

main.add_command(users)
main.add_command(worker)


if __name__ == "__main__":  # pragma: no cover
    main()
