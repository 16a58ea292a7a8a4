"""The identity service on SQLite and PostgreSQL: users, login with throttling, bearer tokens and API keys."""

from __future__ import annotations

import hashlib
import unicodedata

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from accounts.service import Accounts, Principal
from accounts.tables import access_tokens, api_keys, login_attempts, users
from engine.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ThrottledError,
    ValidationError,
)
from engine.store import Store, create_db_engine

# Cheap argon2id parameters keep the suite fast; the production defaults are tested by the rehash test.
FAST = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
PASSWORD = "mật khẩu dài 2026"


@pytest.fixture
def accounts(db_url, clock):
    store = Store(create_db_engine(db_url))
    yield Accounts(store, clock, hasher=FAST)
    store.engine.dispose()


def rows(service: Accounts, table) -> list:
    with service.store.unit_of_work(write=False) as uow:
        return list(uow.conn.execute(select(table)))


def add(service: Accounts, username: str = "lan.nguyen", **options) -> dict:
    options = {"roles": ["applicant"], "full_name": "Nguyễn Thị Lan", **options}
    return service.create_user(username, PASSWORD, **options)


def add_integrator(service: Accounts) -> None:
    add(service, "cong.dvc", roles=["integrator"], full_name="Cổng Dịch vụ công")


# -- users -------------------------------------------------------------------------------------------
def test_create_list_and_disable_users(accounts):
    decomposed = unicodedata.normalize("NFD", "Trần Văn Bình")
    user = add(
        accounts,
        " Binh.Tran ",
        roles=["specialist", "leader"],
        full_name=decomposed,
        agency_code="000.01.01.H26",
    )
    assert user["username"] == "binh.tran" and user["full_name"] == unicodedata.normalize("NFC", decomposed)
    assert user["roles"] == ["leader", "specialist"] and user["active"] and user["disabled_at"] is None
    add(accounts)
    listed = accounts.list_users()
    assert [u["username"] for u in listed] == ["binh.tran", "lan.nguyen"]
    assert all("password_hash" not in u and "password" not in u for u in listed)

    disabled = accounts.disable_user("BINH.TRAN")
    assert disabled["active"] is False and disabled["disabled_at"] is not None
    assert accounts.disable_user("binh.tran") == disabled  # disabling twice changes nothing
    with pytest.raises(NotFoundError):
        accounts.disable_user("nobody")


@pytest.mark.parametrize(
    ("field", "username", "password", "options"),
    [
        ("username", "ab", PASSWORD, {}),
        ("username", "lan nguyen", PASSWORD, {}),
        ("username", "nguyễn", PASSWORD, {}),
        ("username", "x" * 65, PASSWORD, {}),
        ("password", "lan.nguyen", "short1", {}),
        ("password", "lan.nguyen", "0123456789012", {}),
        ("roles", "lan.nguyen", PASSWORD, {"roles": ["applicant", "mayor"]}),
        ("roles", "lan.nguyen", PASSWORD, {"roles": []}),
        ("agency_code", "lan.nguyen", PASSWORD, {"roles": ["reception"]}),
        ("agency_code", "lan.nguyen", PASSWORD, {"agency_code": "000 01; DROP"}),
        ("full_name", "lan.nguyen", PASSWORD, {"full_name": "   "}),
    ],
)
def test_bad_input_is_refused_per_field(accounts, field, username, password, options):
    options = {"roles": ["applicant"], "full_name": "Nguyễn Thị Lan", **options}
    with pytest.raises(ValidationError) as caught:
        accounts.create_user(username, password, **options)
    assert list(caught.value.errors) == [field]
    assert accounts.list_users() == []


def test_every_bad_field_is_reported_at_once(accounts):
    with pytest.raises(ValidationError) as caught:
        accounts.create_user("a", "123", roles=["leader"], full_name="")
    assert set(caught.value.errors) == {"username", "password", "agency_code", "full_name"}


def test_a_username_is_taken_whatever_its_case(accounts):
    add(accounts)
    with pytest.raises(ConflictError) as caught:
        add(accounts, "LAN.Nguyen")
    assert caught.value.code == "conflict"
    assert len(accounts.list_users()) == 1


def test_only_an_argon2id_hash_of_the_password_is_stored(accounts):
    add(accounts)
    [row] = rows(accounts, users)
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    accounts.login("lan.nguyen", PASSWORD, remote="10.0.0.1")
    with pytest.raises(AuthenticationError):
        accounts.login("lan.nguyen", PASSWORD + "!", remote="10.0.0.1")
    for attempt in rows(accounts, login_attempts):
        assert PASSWORD not in str(tuple(attempt))


# -- login and tokens --------------------------------------------------------------------------------
def test_login_returns_a_token_that_authenticates(accounts, clock):
    add(accounts, "chi.le", roles=["reception"], full_name="Lê Thị Chi", agency_code="000.01.01.H26")
    token, expires_at, who = accounts.login("Chi.Le", PASSWORD, remote="10.0.0.1")
    assert expires_at == clock.now() + accounts.token_ttl
    assert isinstance(who, Principal) and who.via == "token" and who.has("reception", "leader")
    assert not who.has("admin")
    assert accounts.authenticate_token(token) == who
    assert who.agency_code == "000.01.01.H26" and who.scopes == frozenset()
    [stored] = rows(accounts, access_tokens)
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
    [attempt] = rows(accounts, login_attempts)
    assert (attempt.username, attempt.remote, attempt.succeeded) == ("chi.le", "10.0.0.1", True)


def test_a_password_typed_decomposed_still_matches(accounts):
    add(accounts)
    accounts.login("lan.nguyen", unicodedata.normalize("NFD", PASSWORD), remote="10.0.0.1")


@pytest.mark.parametrize(("username", "password"), [("lan.nguyen", "wrong password"), ("nobody", PASSWORD)])
def test_wrong_password_and_unknown_user_get_the_same_answer(accounts, username, password):
    add(accounts)
    with pytest.raises(AuthenticationError) as caught:
        accounts.login(username, password, remote="10.0.0.1")
    assert caught.value.message == "Wrong username or password"
    [attempt] = rows(accounts, login_attempts)
    assert attempt.succeeded is False and attempt.username == username
    assert rows(accounts, access_tokens) == []


def test_a_disabled_user_can_no_longer_log_in_nor_use_its_credentials(accounts):
    add_integrator(accounts)
    token, _, _ = accounts.login("cong.dvc", PASSWORD, remote="10.0.0.1")
    key, _ = accounts.create_api_key("cong.dvc", name="DVC", scopes=["processes:start"])
    accounts.disable_user("cong.dvc")
    with pytest.raises(AuthenticationError):
        accounts.authenticate_token(token)
    with pytest.raises(AuthenticationError):
        accounts.authenticate_api_key(key)
    with pytest.raises(AuthenticationError, match="Wrong username or password"):
        accounts.login("cong.dvc", PASSWORD, remote="10.0.0.1")
    assert all(row.revoked_at is not None for row in rows(accounts, access_tokens) + rows(accounts, api_keys))
    with pytest.raises(ConflictError):
        accounts.create_api_key("cong.dvc", name="again", scopes=["processes:start"])


def test_a_token_expires(accounts, clock):
    add(accounts)
    token, _, _ = accounts.login("lan.nguyen", PASSWORD, remote="10.0.0.1")
    clock.advance(hours=7, minutes=59)
    accounts.authenticate_token(token)
    clock.advance(hours=1)
    with pytest.raises(AuthenticationError):
        accounts.authenticate_token(token)


def test_a_revoked_or_unknown_token_is_refused(accounts):
    add(accounts)
    token, _, _ = accounts.login("lan.nguyen", PASSWORD, remote="10.0.0.1")
    other, _, _ = accounts.login("lan.nguyen", PASSWORD, remote="10.0.0.1")
    accounts.revoke_token(token)
    accounts.revoke_token(token)  # logging out twice is harmless
    accounts.revoke_token("never-issued")
    for bad in (token, "never-issued", ""):
        with pytest.raises(AuthenticationError):
            accounts.authenticate_token(bad)
    assert accounts.authenticate_token(other).username == "lan.nguyen"


def test_last_use_is_written_at_most_once_a_minute(accounts, clock):
    add(accounts)
    token, _, _ = accounts.login("lan.nguyen", PASSWORD, remote="10.0.0.1")
    first = clock.now()
    accounts.authenticate_token(token)
    clock.advance(seconds=30)
    accounts.authenticate_token(token)
    assert rows(accounts, access_tokens)[0].last_used_at == first
    clock.advance(seconds=31)
    accounts.authenticate_token(token)
    assert rows(accounts, access_tokens)[0].last_used_at == clock.now()


def test_an_outdated_hash_is_replaced_at_the_next_login(accounts):
    add(accounts)
    default = Accounts(accounts.store, accounts.clock)
    default.login("lan.nguyen", PASSWORD, remote="10.0.0.1")
    [row] = rows(accounts, users)
    assert "m=65536" in row.password_hash
    accounts.login("lan.nguyen", PASSWORD, remote="10.0.0.1")  # the old hasher verifies new hashes too


# -- throttling --------------------------------------------------------------------------------------
def fail(service: Accounts, username: str, remote: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(AuthenticationError):
            service.login(username, "wrong password", remote=remote)


def test_five_failures_lock_the_username_until_the_lockout_passes(accounts, clock):
    add(accounts)
    fail(accounts, "lan.nguyen", "10.0.0.1", times=4)
    clock.advance(minutes=5)
    fail(accounts, "lan.nguyen", "10.0.0.2")
    for remote in ("10.0.0.1", "10.0.0.9"):  # even from elsewhere, even with the right password
        with pytest.raises(ThrottledError) as caught:
            accounts.login("lan.nguyen", PASSWORD, remote=remote)
    assert caught.value.retry_after == 10 * 60  # when the first of the five leaves the window
    assert len(rows(accounts, login_attempts)) == 7  # throttled attempts are recorded too
    clock.advance(minutes=10)
    accounts.login("lan.nguyen", PASSWORD, remote="10.0.0.1")


def test_a_successful_login_clears_the_failures_of_the_username(accounts):
    add(accounts)
    fail(accounts, "lan.nguyen", "10.0.0.1", times=4)
    accounts.login("lan.nguyen", PASSWORD, remote="10.0.0.2")
    fail(accounts, "lan.nguyen", "10.0.0.3", times=4)
    accounts.login("lan.nguyen", PASSWORD, remote="10.0.0.4")


def test_five_failures_from_one_address_lock_it_across_usernames(accounts, clock):
    add(accounts)
    for name in ("an", "binh", "chi", "dung", "em.hoang"):
        fail(accounts, name, "203.0.113.7")
    with pytest.raises(ThrottledError) as caught:
        accounts.login("lan.nguyen", PASSWORD, remote="203.0.113.7")
    assert 0 < caught.value.retry_after <= 15 * 60
    accounts.login("lan.nguyen", PASSWORD, remote="203.0.113.8")
    clock.advance(minutes=15)
    accounts.login("lan.nguyen", PASSWORD, remote="203.0.113.7")


# -- API keys ----------------------------------------------------------------------------------------
def test_an_api_key_is_shown_once_and_authenticates_with_its_scopes(accounts):
    add_integrator(accounts)
    key, record = accounts.create_api_key(
        "cong.dvc", name="Cổng DVC quốc gia", scopes=["messages:send", "processes:start"]
    )
    assert key.startswith("mc_") and len(key) > 40
    assert record["prefix"] == key[:8] and key not in str(record)
    assert record["scopes"] == ["messages:send", "processes:start"] and record["username"] == "cong.dvc"
    [stored] = rows(accounts, api_keys)
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(tuple(stored))
    assert accounts.list_api_keys() == [record]

    who = accounts.authenticate_api_key(key)
    assert (who.via, who.username, who.roles) == ("api_key", "cong.dvc", frozenset({"integrator"}))
    assert who.scopes == frozenset({"messages:send", "processes:start"})


def test_a_revoked_or_unknown_api_key_is_refused(accounts):
    add_integrator(accounts)
    key, record = accounts.create_api_key("cong.dvc", name="DVC", scopes=["webhooks:manage"])
    accounts.revoke_api_key(record["prefix"])
    accounts.revoke_api_key(record["prefix"])
    for bad in (key, "mc_never-issued", "not-a-key"):
        with pytest.raises(AuthenticationError):
            accounts.authenticate_api_key(bad)
    assert accounts.list_api_keys("cong.dvc")[0]["revoked_at"] is not None
    with pytest.raises(NotFoundError):
        accounts.revoke_api_key("mc_nope0")


def test_api_keys_are_for_integrators_and_admins_only(accounts):
    add(accounts)
    add_integrator(accounts)
    with pytest.raises(ValidationError) as caught:
        accounts.create_api_key("lan.nguyen", name="mine", scopes=["processes:start"])
    assert list(caught.value.errors) == ["username"]
    with pytest.raises(ValidationError) as caught:
        accounts.create_api_key("cong.dvc", name="", scopes=["root"])
    assert set(caught.value.errors) == {"name", "scopes"}
    with pytest.raises(NotFoundError):
        accounts.create_api_key("nobody", name="x", scopes=["processes:start"])
    assert rows(accounts, api_keys) == []


# -- demo users --------------------------------------------------------------------------------------
def test_demo_users_are_created_once(accounts):
    first = accounts.ensure_demo_users()
    assert {tuple(u["roles"]) for u in first} == {
        (r,) for r in ("applicant", "reception", "specialist", "leader", "analyst", "admin", "integrator")
    }
    assert all(u["created"] and len(u["password"]) >= 10 for u in first)
    officials = {u["username"]: u["agency_code"] for u in first if u["roles"][0] in ("reception", "leader")}
    assert set(officials.values()) == {"000.01.01.H26"}
    leader = next(u for u in first if u["roles"] == ["leader"])
    _, _, who = accounts.login(leader["username"], leader["password"], remote="127.0.0.1")
    assert who.has("leader") and who.agency_code == "000.01.01.H26"

    again = accounts.ensure_demo_users()
    assert [u["username"] for u in again] == [u["username"] for u in first]
    assert not any(u["created"] or "password" in u for u in again)
    assert len(accounts.list_users()) == 7
