"""Credentials remembered for a few seconds (accounts/credential_cache.py), on SQLite and PostgreSQL: a
remembered credential saves the database check, and revocation, disabling and expiry still hold."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from accounts.credential_cache import CredentialCache
from accounts.rules import Principal
from accounts.service import Accounts
from accounts.tables import access_tokens
from engine.errors import AuthenticationError, ValidationError
from engine.store import Store, create_db_engine
from motcua.settings import Settings
from tests.accounts.test_accounts import FAST, PASSWORD, add, add_integrator
from tests.conftest import Ticks

SECONDS = 2.0


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


def _accounts(db_url, clock, ticks: Ticks, seconds: float = SECONDS) -> Accounts:
    service = Accounts(Store(create_db_engine(db_url)), clock, hasher=FAST, credential_cache_seconds=seconds)
    service.credentials._clock = ticks
    return service


@pytest.fixture
def cached(db_url, clock, ticks):
    service = _accounts(db_url, clock, ticks)
    yield service
    service.store.engine.dispose()


@pytest.fixture
def other_process(db_url, clock, ticks):
    """Another server process on the same database, with its own memory."""
    service = _accounts(db_url, clock, ticks)
    yield service
    service.store.engine.dispose()


def _units(service: Accounts) -> list[int]:
    """Count the units of work the service opens (each credential check in the database opens one)."""
    opened: list[int] = []
    unit_of_work = service.store.unit_of_work

    def counted(*args, **kwargs):
        opened.append(1)
        return unit_of_work(*args, **kwargs)

    service.store.unit_of_work = counted  # type: ignore[method-assign]
    return opened


def _logged_in(service: Accounts) -> tuple[str, Any]:
    """A user added and logged in: (bearer token, its expiry)."""
    add(service)
    token, expires_at, _ = service.login("lan.nguyen", PASSWORD, remote="10.0.0.1")
    return token, expires_at


def test_a_remembered_token_is_not_checked_in_the_database_again(cached, ticks):
    add(cached)
    token, _, who = cached.login("lan.nguyen", PASSWORD, remote="10.0.0.1")
    assert cached.authenticate_token(token) == who  # read (and its first use written)
    opened = _units(cached)
    for _ in range(5):
        assert cached.authenticate_token(token) == who
    assert opened == []
    ticks.now += SECONDS  # checked again once the time is up
    assert cached.authenticate_token(token) == who
    assert len(opened) == 1


def test_a_token_revoked_or_a_user_disabled_here_is_refused_at_once(cached):
    add_integrator(cached)
    token, _, _ = cached.login("cong.dvc", PASSWORD, remote="10.0.0.1")
    other, _, _ = cached.login("cong.dvc", PASSWORD, remote="10.0.0.1")
    key, _ = cached.create_api_key("cong.dvc", name="DVC", scopes=["processes:start"])
    for credential in (token, other):
        cached.authenticate_token(credential)
    cached.authenticate_api_key(key)
    cached.revoke_token(token)
    with pytest.raises(AuthenticationError):
        cached.authenticate_token(token)
    assert cached.authenticate_token(other).username == "cong.dvc"
    cached.disable_user("cong.dvc")
    with pytest.raises(AuthenticationError):
        cached.authenticate_token(other)
    with pytest.raises(AuthenticationError):
        cached.authenticate_api_key(key)


def test_an_api_key_revoked_here_is_refused_at_once(cached):
    add_integrator(cached)
    key, record = cached.create_api_key("cong.dvc", name="DVC", scopes=["processes:start"])
    assert cached.authenticate_api_key(key).scopes == frozenset({"processes:start"})
    cached.revoke_api_key(record["prefix"])
    with pytest.raises(AuthenticationError):
        cached.authenticate_api_key(key)


def test_a_revocation_through_another_process_holds_within_the_cache_time(cached, other_process, ticks):
    token, _ = _logged_in(cached)
    cached.authenticate_token(token)
    other_process.revoke_token(token)
    with pytest.raises(AuthenticationError):
        other_process.authenticate_token(token)
    ticks.now += SECONDS - 0.1
    cached.authenticate_token(token)  # still believed here, for less than the cache time
    ticks.now += 0.1
    with pytest.raises(AuthenticationError):
        cached.authenticate_token(token)


def test_a_remembered_token_still_expires_on_time(cached, clock):
    token, expires_at = _logged_in(cached)
    cached.authenticate_token(token)
    clock.advance(seconds=(expires_at - clock.now()).total_seconds())
    with pytest.raises(AuthenticationError):
        cached.authenticate_token(token)


def test_a_credential_refused_is_not_remembered(cached, ticks):
    token, _ = _logged_in(cached)
    cached.revoke_token(token)
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            cached.authenticate_token(token)
    assert len(cached.credentials) == 0
    with cached.store.unit_of_work() as uow:  # un-revoking in the database is seen at the next check
        uow.conn.execute(update(access_tokens).values(revoked_at=None))
    assert cached.authenticate_token(token).username == "lan.nguyen"
    assert len(cached.credentials) == 1


def test_without_the_cache_every_check_reads_the_database(db_url, clock, ticks):
    service = _accounts(db_url, clock, ticks, seconds=0)
    try:
        add(service)
        token, _, _ = service.login("lan.nguyen", PASSWORD, remote="10.0.0.1")
        service.authenticate_token(token)
        opened = _units(service)
        for _ in range(3):
            service.authenticate_token(token)
        assert len(opened) == 3 and len(service.credentials) == 0
    finally:
        service.store.engine.dispose()


def _principal(user_id: int) -> Principal:
    return Principal(
        user_id=user_id,
        username=f"u{user_id}",
        full_name="X",
        roles=frozenset(),
        agency_code=None,
        via="token",
    )


def test_the_cache_keeps_at_most_its_size_and_forgets_by_user():
    ticks = Ticks()
    cache = CredentialCache(5.0, size=3, clock=ticks)
    for n in range(5):
        cache.put(f"h{n}", _principal(n % 2), None)
    assert len(cache) == 3 and "h0" not in cache and "h4" in cache
    assert cache.get("h2") == (_principal(0), None)
    cache.forget_user(0)
    assert "h2" not in cache and "h4" not in cache and "h3" in cache
    ticks.now += 5.0
    assert cache.get("h3") is None and "h3" not in cache
    off = CredentialCache(0.0)
    off.put("h", _principal(1), None)
    assert off.get("h") is None and len(off) == 0


def test_the_setting_is_read_and_checked():
    assert Settings.from_env({}).auth_cache_seconds == 2.0
    assert Settings.from_env({"MOTCUA_AUTH_CACHE_SECONDS": "0"}).auth_cache_seconds == 0.0
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"MOTCUA_AUTH_CACHE_SECONDS": "-1"})
    assert "MOTCUA_AUTH_CACHE_SECONDS" in caught.value.errors
    with pytest.raises(ValidationError):
        Settings.from_env({"MOTCUA_AUTH_CACHE_SECONDS": "soon"})
