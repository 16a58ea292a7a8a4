"""What every ``motcua`` command shares: the ``--json`` option, output, error reporting and the engine.

``command`` gives a command ``--json`` and maps domain errors to stderr and exit code 1; ``_emit`` prints a
result as JSON or as text; ``_engine`` builds the engine from the environment once per process.  The command
modules (``motcua/cli.py`` and the ``cli_*`` modules it registers) import these from here.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
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
