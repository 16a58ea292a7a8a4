"""The ``motcua users`` commands, run through click on the group itself against SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from motcua import cli
from motcua.cli_users import users

PASSWORD = "mật khẩu dài 2026"


@pytest.fixture
def run(db_url, monkeypatch):
    monkeypatch.setenv("MOTCUA_DATABASE_URL", db_url)
    cli._engine.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, expect: int = 0, input: str | None = None):
        result = runner.invoke(users, list(args), input=input, catch_exceptions=False)
        assert result.exit_code == expect, (result.stdout, result.stderr)
        return result

    def invoke_json(*args: str, expect: int = 0, input: str | None = None):
        result = invoke(*args, "--json", expect=expect, input=input)
        return json.loads(result.stdout if expect == 0 else result.stderr)

    invoke.json = invoke_json  # type: ignore[attr-defined]
    yield invoke
    cli._engine().store.engine.dispose()
    cli._engine.cache_clear()


def test_add_with_a_prompted_password_then_list_and_disable(run):
    result = run(
        "add",
        "Chi.Le",
        "--role",
        "reception",
        "--role",
        "specialist",
        "--name",
        "Lê Thị Chi",
        "--agency",
        "000.01.01.H26",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert PASSWORD not in result.stdout
    assert "created chi.le\treception,specialist\t000.01.01.H26\tactive" in result.stdout

    [user] = run.json("list")
    assert user["username"] == "chi.le" and "password_hash" not in user
    assert run.json("disable", "chi.le")["active"] is False
    assert "disabled" in run("list").stdout


def test_add_reads_the_password_from_stdin_and_reports_bad_fields(run):
    user = run.json(
        "add",
        "lan.nguyen",
        "--role",
        "applicant",
        "--name",
        "Nguyễn Thị Lan",
        "--password-stdin",
        input=f"{PASSWORD}\n",
    )
    assert user["roles"] == ["applicant"]
    error = run.json(
        "add", "x", "--role", "leader", "--name", "X", "--password-stdin", input="123\n", expect=1
    )
    assert error["error"]["code"] == "validation_failed"
    assert set(error["error"]["errors"]) == {"username", "password", "agency_code"}
    error = run.json(
        "add",
        "lan.nguyen",
        "--role",
        "applicant",
        "--name",
        "Lan",
        "--password-stdin",
        input=f"{PASSWORD}\n",
        expect=1,
    )
    assert error["error"]["code"] == "conflict"
    assert "error: No user 'nobody'" in run("disable", "nobody", expect=1).stderr


def test_an_api_key_is_printed_once(run):
    run(
        "add",
        "cong.dvc",
        "--role",
        "integrator",
        "--name",
        "Cổng DVC",
        "--password-stdin",
        input=f"{PASSWORD}\n",
    )
    issued = run.json(
        "api-key", "cong.dvc", "--name", "DVC", "--scope", "processes:start", "--scope", "messages:send"
    )
    assert issued["key"].startswith("mc_") and issued["prefix"] == issued["key"][:8]
    assert issued["scopes"] == ["messages:send", "processes:start"]
    human = run("api-key", "cong.dvc", "--name", "DVC 2", "--scope", "webhooks:manage").stdout
    assert human.startswith("mc_") and "shown once" in human

    from accounts.service import Accounts

    engine = cli._engine()
    who = Accounts(engine.store, engine.clock).authenticate_api_key(issued["key"])
    assert who.username == "cong.dvc" and who.via == "api_key"
    error = run.json("api-key", "cong.dvc", "--name", "x", "--scope", "root", expect=1)
    assert list(error["error"]["errors"]) == ["scopes"]
