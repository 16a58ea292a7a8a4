"""The ``motcua users`` commands: add, list and disable accounts, and issue integrator API keys.

Registered on the main group at the bottom of ``motcua/cli.py``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from accounts.service import ROLES, SCOPES, Accounts

from .cli_base import _emit, _engine, command


@click.group()
def users() -> None:
    """User accounts and integrator API keys."""


def _accounts() -> Accounts:
    engine = _engine()
    return Accounts(engine.store, engine.clock)


def _user_line(user: dict[str, Any]) -> str:
    state = "active" if user["active"] else f"disabled {user['disabled_at']}"
    roles = ",".join(user["roles"])
    return f"{user['username']}\t{roles}\t{user['agency_code'] or '-'}\t{state}\t{user['full_name']}"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("add")
@click.argument("username")
@click.option(
    "--role", "roles", multiple=True, required=True, help=f"Repeatable; one of {', '.join(sorted(ROLES))}."
)
@click.option("--name", "full_name", required=True, help="The person's full name.")
@click.option("--agency", "agency_code", help="Agency code of an official (e.g. 000.01.01.H26).")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin (no prompt).")
@click.option("--by", "actor", default="admin", help="Who creates the account (recorded).")
@command
def users_add(
    username: str,
    roles: tuple[str, ...],
    full_name: str,
    agency_code: str | None,
    password_stdin: bool,
    actor: str,
    as_json: bool,
) -> None:
    """Create a user; the password is prompted for twice (hidden) unless --password-stdin."""
    password = _read_password(password_stdin)
    user = _accounts().create_user(
        username, password, roles=roles, full_name=full_name, agency_code=agency_code, actor=actor
    )
    _emit(as_json, user, lambda u: f"created {_user_line(u)}")


@users.command("list")
@command
def users_list(as_json: bool) -> None:
    """List users (never their password hashes)."""
    rows = _accounts().list_users()
    _emit(as_json, rows, lambda rs: "\n".join(_user_line(u) for u in rs) or "no users")


@users.command("disable")
@click.argument("username")
@command
def users_disable(username: str, as_json: bool) -> None:
    """Disable a user and revoke its tokens and API keys."""
    user = _accounts().disable_user(username)
    _emit(as_json, user, lambda u: f"disabled {_user_line(u)}")


@users.command("api-key")
@click.argument("username")
@click.option("--name", "name", required=True, help="What the key is for, shown in lists.")
@click.option(
    "--scope", "scopes", multiple=True, required=True, help=f"Repeatable; one of {', '.join(sorted(SCOPES))}."
)
@command
def users_api_key(username: str, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Issue an API key to an integrator or admin account; the key is printed this once only."""
    key, record = _accounts().create_api_key(username, name=name, scopes=scopes)
    _emit(
        as_json,
        {"key": key, **record},
        lambda p: f"{p['key']}\n(shown once; listed as {p['prefix']}…, scopes {','.join(p['scopes'])})",
    )
