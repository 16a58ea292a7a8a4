"""Every query of the identity domain, as functions of a connection inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection

from engine.fast_sql import FastStatement

from .tables import access_tokens, api_keys, login_attempts, users

Row = Any
_USER_FIELDS = ("id", "username", "full_name", "roles", "agency_code", "active", "created_at", "created_by")

# What a credential check needs to know of its user, next to the credential's own columns.
_PRINCIPAL_COLUMNS = (
    users.c.id.label("user_id"),
    users.c.username,
    users.c.full_name,
    users.c.roles,
    users.c.agency_code,
    users.c.active,
)
_PUBLIC_USER_COLUMNS = [c for c in users.c if c.name != "password_hash"]


# -- shaping ---------------------------------------------------------------------------------------
def split_list(text: str) -> frozenset[str]:
    """Return the members of a stored comma list (roles, scopes)."""
    return frozenset(part for part in text.split(",") if part)


def user_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a user row (or the values it was inserted with) as a dict, never with its password hash."""
    out = {key: values.get(key) for key in _USER_FIELDS}
    out["roles"] = sorted(split_list(values["roles"]))
    out["disabled_at"] = values.get("disabled_at")
    return out


def api_key_dict(row: Row) -> dict[str, Any]:
    """Return an API key row of ``list_api_keys`` as a dict with its scopes as a list."""
    out = dict(row._mapping)
    out["scopes"] = sorted(split_list(out["scopes"]))
    return out


# -- users ------------------------------------------------------------------------------------------
def get_user(conn: Connection, username: str) -> Row | None:
    """Return the whole user row (with its password hash) of a normalised username, or None."""
    return conn.execute(select(users).where(users.c.username == username)).first()


def insert_user(conn: Connection, values: Mapping[str, Any]) -> int:
    """Insert a user; return its id."""
    result = conn.execute(insert(users).values(**values))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def update_user(conn: Connection, user_id: int, values: Mapping[str, Any]) -> None:
    """Update columns of a user."""
    conn.execute(update(users).where(users.c.id == user_id).values(**values))


def list_users(conn: Connection) -> list[Row]:
    """Return every user without its password hash, ordered by username."""
    return list(conn.execute(select(*_PUBLIC_USER_COLUMNS).order_by(users.c.username)))


def revoke_credentials(conn: Connection, user_id: int, at: datetime) -> None:
    """Revoke every live token and API key of a user."""
    for table in (access_tokens, api_keys):
        conn.execute(
            update(table)
            .where(table.c.user_id == user_id, table.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )


# -- bearer tokens and API keys ---------------------------------------------------------------------
def insert_token(conn: Connection, values: Mapping[str, Any]) -> None:
    """Insert an access token row (its hash, never the token)."""
    conn.execute(insert(access_tokens).values(**values))


_TOKEN_WITH_USER = (  # every authenticated request runs it: built once
    select(
        access_tokens.c.id,
        access_tokens.c.expires_at,
        access_tokens.c.revoked_at,
        access_tokens.c.last_used_at,
        *_PRINCIPAL_COLUMNS,
    )
    .join_from(access_tokens, users, users.c.id == access_tokens.c.user_id)
    .where(access_tokens.c.token_hash == bindparam("token_hash"))
)


_TOKEN_WITH_USER_FAST = FastStatement(_TOKEN_WITH_USER)


def token_with_user(conn: Connection, token_hash: str) -> Row | None:
    """Return a token's id, expiry, revocation and last use with its user's identity, or None."""
    return _TOKEN_WITH_USER_FAST.first(conn, {"token_hash": token_hash})


def revoke_token(conn: Connection, token_hash: str, at: datetime) -> None:
    """Revoke a token unless it already is."""
    a = access_tokens.c
    conn.execute(
        update(access_tokens).where(a.token_hash == token_hash, a.revoked_at.is_(None)).values(revoked_at=at)
    )


def touch(conn: Connection, table: Table, row_id: int, at: datetime, stale_before: datetime) -> None:
    """Set ``last_used_at`` of a token or key to ``at`` unless it was set after ``stale_before``."""
    c = table.c
    conn.execute(
        update(table)
        .where(c.id == row_id, or_(c.last_used_at.is_(None), c.last_used_at < stale_before))
        .values(last_used_at=at)
    )


def insert_api_key(conn: Connection, values: Mapping[str, Any]) -> int:
    """Insert an API key row (its hash, never the key); return its id."""
    result = conn.execute(insert(api_keys).values(**values))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def api_key_prefix_taken(conn: Connection, prefix: str) -> bool:
    """Return whether some API key, live or revoked, already starts with ``prefix``."""
    return conn.execute(select(api_keys.c.id).where(api_keys.c.prefix == prefix)).first() is not None


def api_key_with_user(conn: Connection, key_hash: str) -> Row | None:
    """Return a key's id, scopes, revocation and last use with its user's identity, or None."""
    k = api_keys.c
    query = (
        select(k.id, k.scopes, k.revoked_at, k.last_used_at, *_PRINCIPAL_COLUMNS)
        .join_from(api_keys, users, users.c.id == k.user_id)
        .where(k.key_hash == key_hash)
    )
    return conn.execute(query).first()


def api_key_by_prefix(conn: Connection, prefix: str) -> Row | None:
    """Return the API key row (with its owner's username) that starts with ``prefix``, or None."""
    query = _api_key_list_query().where(api_keys.c.prefix == prefix)
    return conn.execute(query).first()


def list_api_keys(conn: Connection, username: str | None = None) -> list[Row]:
    """Return API keys without their hashes (with their owner's username), oldest first."""
    query = _api_key_list_query().order_by(api_keys.c.id)
    if username is not None:
        query = query.where(users.c.username == username)
    return list(conn.execute(query))


def _api_key_list_query() -> Any:
    k = api_keys.c
    return select(
        k.id, k.prefix, k.name, k.scopes, users.c.username, k.created_at, k.revoked_at, k.last_used_at
    ).join_from(api_keys, users, users.c.id == k.user_id)


def revoke_api_key(conn: Connection, key_id: int, at: datetime) -> None:
    """Revoke an API key unless it already is."""
    k = api_keys.c
    conn.execute(update(api_keys).where(k.id == key_id, k.revoked_at.is_(None)).values(revoked_at=at))


# -- login attempts ---------------------------------------------------------------------------------
def record_attempt(conn: Connection, username: str, remote: str, at: datetime, succeeded: bool) -> None:
    """Append one login attempt to the log."""
    conn.execute(insert(login_attempts).values(username=username, remote=remote, at=at, succeeded=succeeded))


def recent_attempts(
    conn: Connection,
    since: datetime,
    limit: int,
    *,
    username: str | None = None,
    remote: str | None = None,
    failures_only: bool = False,
) -> list[Row]:
    """Return (at, succeeded) of the latest attempts after ``since`` of a username or remote, newest first."""
    c = login_attempts.c
    query = select(c.at, c.succeeded).where(c.at > since).order_by(c.at.desc(), c.id.desc()).limit(limit)
    if username is not None:
        query = query.where(c.username == username)
    if remote is not None:
        query = query.where(c.remote == remote)
    if failures_only:
        query = query.where(c.succeeded.is_(False))
    return list(conn.execute(query))
