"""The ``motcua calendar`` commands: list, set and unset the declared days off and make-up working days.

Registered on the main group at the bottom of ``motcua/cli.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from .cli_base import _emit, _engine, command
from .settings import Settings


@click.group()
def calendar() -> None:
    """The admin table of extra days off and make-up working days."""


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
