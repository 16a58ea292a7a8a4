"""Tables of the identity domain: users, their bearer tokens and API keys, and the log of login attempts.

They share the engine's metadata so that one Alembic history (``motcua/migrations``) manages the schema.
Secrets are never stored: passwords as argon2id hashes, tokens and API keys as SHA-256 hex digests.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, Text

from engine.tables import BigId, UTCDateTime, metadata

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),  # lower-cased, NFC
    Column("full_name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("roles", String(200), nullable=False),  # comma list, sorted
    Column("agency_code", String(40)),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("disabled_at", UTCDateTime),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("prefix", String(8), nullable=False, unique=True),  # the key's first 8 characters, for lists
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("scopes", Text, nullable=False),  # comma list, sorted
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)

# Every login attempt, kept for throttling (by username and by remote address) and for audit.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("remote", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Index("ix_login_attempts_username_at", "username", "at"),
    Index("ix_login_attempts_remote_at", "remote", "at"),
)
