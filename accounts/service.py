"""Who may call: users with roles, password login with throttling, bearer tokens and integrator API keys.

Secrets never reach the database: passwords are stored as argon2id hashes, bearer tokens and API keys as
their SHA-256 (long random strings need no slow hash).  Each public method is one short transaction, except
that ``login`` verifies the password (slow on purpose) between a read and a write, holding no lock meanwhile,
and that credential checks only write ``last_used_at`` when it is a minute old.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError

from engine.errors import AuthenticationError, ConflictError, NotFoundError, ThrottledError, ValidationError
from engine.runtime import Clock
from engine.store import Store

from . import store as q
from .credential_cache import CredentialCache
from .rules import (
    API_KEY_PREFIX,
    DEMO_AGENCY,
    DEMO_USERS,
    KEY_HOLDER_ROLES,
    OFFICIAL_ROLES,
    ROLES,
    SCOPES,
    Principal,
    nfc,
    normalize_username,
    sha256_hex,
    validated_key,
    validated_user,
)
from .tables import access_tokens, api_keys

__all__ = [
    "API_KEY_PREFIX",
    "OFFICIAL_ROLES",
    "ROLES",
    "SCOPES",
    "Accounts",
    "Principal",
    "normalize_username",
]

WRONG_CREDENTIALS = "Wrong username or password"
BAD_CREDENTIAL = "The credential is unknown, expired or revoked"
# last_used_at is only rewritten when older than this, so that most requests only read.
TOUCH_EVERY = timedelta(minutes=1)


class Accounts:
    """The identity service: users, login, bearer tokens and API keys, on the engine's store.

    Args:
        store: the database (one unit of work per call).
        clock: the time source (tests pass a fake one).
        token_ttl: how long a bearer token from ``login`` lives.
        max_failures: failed logins of one username, or from one remote address, that lock it out.
        lockout: the window in which failures count, and so how long a lock lasts.
        hasher: the argon2id hasher (tests pass a cheap one); passwords hashed with other parameters are
            rehashed at their next successful login.
        credential_cache_seconds: how long a bearer token or API key found valid is believed without
            checking the database again (``CredentialCache``; ``MOTCUA_AUTH_CACHE_SECONDS`` for the server);
            0 (default): checked on every call.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        token_ttl: timedelta = timedelta(hours=8),
        max_failures: int = 5,
        lockout: timedelta = timedelta(minutes=15),
        hasher: PasswordHasher | None = None,
        credential_cache_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.token_ttl = token_ttl
        self.max_failures = max_failures
        self.lockout = lockout
        self.hasher = hasher or PasswordHasher()
        self.credentials = CredentialCache(credential_cache_seconds)

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against for unknown usernames, so that they take as long as known ones.
        return self.hasher.hash(secrets.token_urlsafe(16))

    # -- users ------------------------------------------------------------------------------------
    def create_user(
        self,
        username: str,
        password: str,
        *,
        roles: Iterable[str],
        full_name: str,
        agency_code: str | None = None,
        actor: str = "admin",
    ) -> dict[str, Any]:
        """Create an active user.

        Args:
            username: 3-64 characters of a-z, 0-9, '.', '_', '-' (lower-cased first).
            password: at least 10 characters, not only digits.
            roles: some of ``ROLES``; officials (reception, specialist, leader) need ``agency_code``.
            full_name: the name shown to others.
            agency_code: the agency an official works for (e.g. "000.01.01.H26").
            actor: who creates the user (recorded).

        Returns:
            The user as a dict (never its password hash).

        Raises:
            ValidationError: a field is wrong; ``errors`` names each one.
            ConflictError: the username is taken.
        """
        values = validated_user(username, password, roles, full_name, agency_code)
        values.update(
            password_hash=self.hasher.hash(nfc(password)),
            active=True,
            created_at=self.clock.now(),
            created_by=actor,
            disabled_at=None,
        )
        taken = ConflictError(f"The username '{values['username']}' is taken", username=values["username"])
        try:
            with self.store.unit_of_work() as uow:
                if q.get_user(uow.conn, values["username"]) is not None:
                    raise taken
                values["id"] = q.insert_user(uow.conn, values)
        except IntegrityError as exc:  # a concurrent create of the same name
            raise taken from exc
        return q.user_dict(values)

    def list_users(self) -> list[dict[str, Any]]:
        """Return every user (without password hashes), ordered by username."""
        with self.store.unit_of_work(write=False) as uow:
            return [q.user_dict(row._mapping) for row in q.list_users(uow.conn)]

    def disable_user(self, username: str) -> dict[str, Any]:
        """Disable a user and revoke all its tokens and API keys; disabling twice changes nothing.

        Returns:
            The user as a dict.

        Raises:
            NotFoundError: no such user.
        """
        name = normalize_username(username)
        with self.store.unit_of_work() as uow:
            row = _existing_user(uow.conn, name)
            if row.active:
                now = self.clock.now()
                q.update_user(uow.conn, row.id, {"active": False, "disabled_at": now})
                q.revoke_credentials(uow.conn, row.id, now)
                row = _existing_user(uow.conn, name)
        self.credentials.forget_user(row.id)
        return q.user_dict(row._mapping)

    def ensure_demo_users(self) -> list[dict[str, Any]]:
        """Create the demo users that are missing: one per role, officials in agency 000.01.01.H26.

        Returns:
            One entry per demo user (username, full_name, roles, agency_code, created); the ones just created
            also carry their random ``password``, which is shown this once and never again.
        """
        entries = []
        with self.store.unit_of_work() as uow:
            for username, role, full_name in DEMO_USERS:
                agency = DEMO_AGENCY if role in OFFICIAL_ROLES else None
                entry: dict[str, Any] = {
                    "username": username,
                    "full_name": full_name,
                    "roles": [role],
                    "agency_code": agency,
                    "created": q.get_user(uow.conn, username) is None,
                }
                if entry["created"]:
                    entry["password"] = secrets.token_urlsafe(12)
                    values = validated_user(username, entry["password"], [role], full_name, agency)
                    values.update(
                        password_hash=self.hasher.hash(entry["password"]),
                        active=True,
                        created_at=self.clock.now(),
                        created_by="demo",
                    )
                    q.insert_user(uow.conn, values)
                entries.append(entry)
        return entries

    # -- login and bearer tokens ------------------------------------------------------------------
    def login(self, username: str, password: str, *, remote: str) -> tuple[str, datetime, Principal]:
        """Check a username and password and open a session; every attempt is recorded (not the password).

        Args:
            remote: the caller's IP address; failures are also counted per address, across usernames.

        Returns:
            (bearer token, its expiry, the principal).  Only the token's SHA-256 is stored.

        Raises:
            ThrottledError: ``max_failures`` failed attempts for this username or from this address within
                ``lockout`` (even if the password is right now); ``retry_after`` says when to try again.
            AuthenticationError: unknown user, wrong password or disabled user (one message for all three).
        """
        name, remote = normalize_username(username)[:64], (remote or "").strip()[:64] or "unknown"
        now = self.clock.now()
        with self.store.unit_of_work(write=False) as uow:
            locked_until = self._locked_until(uow.conn, name, remote, now)
            user = q.get_user(uow.conn, name) if locked_until is None else None
        if locked_until is not None:
            self._record_attempt(name, remote, now)
            retry_after = max(1, math.ceil((locked_until - now).total_seconds()))
            raise ThrottledError("Too many failed logins; try again later", retry_after=retry_after)
        matches, new_hash = self._verify(user, nfc(password))
        if user is None or not user.active or not matches:
            self._record_attempt(name, remote, now)
            raise AuthenticationError(WRONG_CREDENTIALS)
        token = secrets.token_urlsafe(32)
        with self.store.unit_of_work() as uow:
            q.record_attempt(uow.conn, name, remote, now, succeeded=True)
            if new_hash is not None:
                q.update_user(uow.conn, user.id, {"password_hash": new_hash})
            q.insert_token(uow.conn, self._token_row(token, user.id, now))
        return token, now + self.token_ttl, _principal(user, user.id, via="token")

    def _record_attempt(self, name: str, remote: str, now: datetime) -> None:
        with self.store.unit_of_work() as uow:
            q.record_attempt(uow.conn, name, remote, now, succeeded=False)

    def _locked_until(self, conn: Any, name: str, remote: str, now: datetime) -> datetime | None:
        # Locked while the last max_failures attempts of the username all failed, or while the address
        # has max_failures failures (successes do not clear an address: one good account must not unlock it).
        since = now - self.lockout
        recent = (
            q.recent_attempts(conn, since, self.max_failures, username=name),
            q.recent_attempts(conn, since, self.max_failures, remote=remote, failures_only=True),
        )
        ends = [
            rows[-1].at + self.lockout
            for rows in recent
            if len(rows) >= self.max_failures and not any(row.succeeded for row in rows)
        ]
        return max(ends, default=None)

    def _verify(self, user: Any, password: str) -> tuple[bool, str | None]:
        """Return whether the password matches, and a fresh hash when the stored one is outdated."""
        stored = user.password_hash if user is not None else self._dummy_hash
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False, None
        if user is None:
            return False, None
        return True, self.hasher.hash(password) if self.hasher.check_needs_rehash(stored) else None

    def _token_row(self, token: str, user_id: int, now: datetime) -> dict[str, Any]:
        return {
            "token_hash": sha256_hex(token),
            "user_id": user_id,
            "created_at": now,
            "expires_at": now + self.token_ttl,
        }

    def authenticate_token(self, token: str) -> Principal:
        """Return who holds a bearer token.

        Raises:
            AuthenticationError: the token is unknown, expired or revoked, or its user is disabled.
        """
        now = self.clock.now()
        digest = sha256_hex(token)
        known = self.credentials.get(digest)
        if known is not None:
            principal, expires_at = known
            if expires_at is not None and expires_at <= now:
                raise AuthenticationError(BAD_CREDENTIAL)
            return principal
        with self.store.unit_of_work(write=False) as uow:
            row = q.token_with_user(uow.conn, digest)
        if row is None or row.revoked_at is not None or row.expires_at <= now or not row.active:
            raise AuthenticationError(BAD_CREDENTIAL)
        self._touch(access_tokens, row, now)
        principal = _principal(row, row.user_id, via="token")
        self.credentials.put(digest, principal, row.expires_at)
        return principal

    def revoke_token(self, token: str) -> None:
        """Revoke a bearer token (log out); an unknown or already revoked token is left alone."""
        digest = sha256_hex(token)
        with self.store.unit_of_work() as uow:
            q.revoke_token(uow.conn, digest, self.clock.now())
        self.credentials.forget(digest)

    def _touch(self, table: Any, row: Any, now: datetime) -> None:
        if row.last_used_at is None or row.last_used_at < now - TOUCH_EVERY:
            with self.store.unit_of_work() as uow:
                q.touch(uow.conn, table, row.id, now, now - TOUCH_EVERY)

    # -- API keys ---------------------------------------------------------------------------------
    def create_api_key(
        self, username: str, *, name: str, scopes: Iterable[str]
    ) -> tuple[str, dict[str, Any]]:
        """Issue an API key to an integrator (or admin) account.

        Args:
            username: the account the key acts as.
            name: what the key is for (1-100 characters), shown in lists.
            scopes: some of ``SCOPES``.

        Returns:
            (the key, shown this once and never stored; the key's record with its 8-character prefix).

        Raises:
            ValidationError: bad name or scopes, or the account is neither integrator nor admin.
            NotFoundError: no such user.
            ConflictError: the user is disabled.
        """
        label, scope_set = validated_key(name, scopes)
        with self.store.unit_of_work() as uow:
            user = _existing_user(uow.conn, normalize_username(username))
            _check_key_holder(user)
            key = API_KEY_PREFIX + secrets.token_urlsafe(32)
            while q.api_key_prefix_taken(uow.conn, key[:8]):
                key = API_KEY_PREFIX + secrets.token_urlsafe(32)
            values = {
                "prefix": key[:8],
                "key_hash": sha256_hex(key),
                "user_id": user.id,
                "name": label,
                "scopes": ",".join(sorted(scope_set)),
                "created_at": self.clock.now(),
            }
            q.insert_api_key(uow.conn, values)
            record = q.api_key_dict(q.api_key_by_prefix(uow.conn, values["prefix"]))
        return key, record

    def list_api_keys(self, username: str | None = None) -> list[dict[str, Any]]:
        """Return API keys (prefix, name, scopes, owner, dates; never the key or its hash), oldest first."""
        name = normalize_username(username) if username is not None else None
        with self.store.unit_of_work(write=False) as uow:
            return [q.api_key_dict(row) for row in q.list_api_keys(uow.conn, name)]

    def authenticate_api_key(self, key: str) -> Principal:
        """Return who holds an API key, with the key's scopes (``via="api_key"``).

        Raises:
            AuthenticationError: the key is malformed, unknown or revoked, or its user is disabled.
        """
        if not key.startswith(API_KEY_PREFIX):
            raise AuthenticationError(BAD_CREDENTIAL)
        now = self.clock.now()
        digest = sha256_hex(key)
        known = self.credentials.get(digest)
        if known is not None:
            return known[0]
        with self.store.unit_of_work(write=False) as uow:
            row = q.api_key_with_user(uow.conn, digest)
        if row is None or row.revoked_at is not None or not row.active:
            raise AuthenticationError(BAD_CREDENTIAL)
        self._touch(api_keys, row, now)
        principal = _principal(row, row.user_id, via="api_key", scopes=q.split_list(row.scopes))
        self.credentials.put(digest, principal, None)
        return principal

    def revoke_api_key(self, prefix: str) -> None:
        """Revoke the API key starting with ``prefix`` (as shown in lists); revoking twice is harmless.

        Raises:
            NotFoundError: no key has this prefix.
        """
        with self.store.unit_of_work() as uow:
            row = q.api_key_by_prefix(uow.conn, prefix)
            if row is None:
                raise NotFoundError(f"No API key starts with '{prefix}'", prefix=prefix)
            q.revoke_api_key(uow.conn, row.id, self.clock.now())
        self.credentials.clear()  # the key's hash is not known here: forget every remembered credential


def _existing_user(conn: Any, name: str) -> Any:
    row = q.get_user(conn, name)
    if row is None:
        raise NotFoundError(f"No user '{name}'", username=name)
    return row


def _check_key_holder(user: Any) -> None:
    if not user.active:
        raise ConflictError(f"The user '{user.username}' is disabled", username=user.username)
    if q.split_list(user.roles).isdisjoint(KEY_HOLDER_ROLES):
        raise ValidationError(
            "Only integrator or admin accounts may hold API keys",
            {"username": [f"'{user.username}' has neither the integrator nor the admin role"]},
        )


def _principal(row: Any, user_id: int, *, via: str, scopes: frozenset[str] = frozenset()) -> Principal:
    return Principal(
        user_id=user_id,
        username=row.username,
        full_name=row.full_name,
        roles=q.split_list(row.roles),
        agency_code=row.agency_code,
        via=via,
        scopes=scopes,
    )
