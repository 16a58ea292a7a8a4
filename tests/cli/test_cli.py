"""The ``motcua`` command line, run as a real process against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
LIFECYCLE = str(DATA / "engine" / "lifecycle.bpmn")


@pytest.fixture
def motcua(db_url, tmp_path):
    env = {**os.environ, "MOTCUA_DATABASE_URL": db_url}

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "motcua.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == expect, (result.stdout, result.stderr)
        return result

    def run_json(*args: str, expect: int = 0) -> object:
        result = run(*args, "--json", expect=expect)
        return json.loads(result.stdout if expect == 0 else result.stderr)

    run.json = run_json  # type: ignore[attr-defined]
    return run


def test_entry_point_is_installed():
    assert (Path(sys.executable).parent / "motcua").exists()


def test_a_dossier_through_the_command_line(motcua):
    assert motcua.json("db", "upgrade")["revision"]
    [deployed] = motcua.json("deploy", LIFECYCLE)
    assert (deployed["key"], deployed["version"], deployed["created"]) == ("lifecycle_test", 1, True)
    assert len(deployed["sha256"]) == 64
    assert motcua.json("deploy", LIFECYCLE)[0]["created"] is False
    assert "lifecycle_test\tv1" in motcua("deploy", LIFECYCLE).stdout

    view = motcua.json(
        "start", "lifecycle_test", "--data", '{"dossier_code": "H53-1"}', "--business-key", "H53-261130-0001"
    )
    assert view["status"] == "running"
    [task] = motcua.json("tasks", "--lane", "mot_cua")
    assert task["title"] == "Tiếp nhận hồ sơ" and task["instance_id"] == view["id"]
    assert motcua.json("tasks", "--lane", "lanh_dao") == []

    view = motcua.json("complete", task["id"], "--data", '{"complete": true, "copies": 1}')
    assert view["subscriptions"][0]["message_name"] == "payment.confirmed"
    view = motcua.json(
        "message",
        "payment.confirmed",
        "--correlation",
        '{"business_key": "H53-261130-0001"}',
        "--data",
        '{"paid": true}',
    )
    assert view["timers"][0]["element_id"] == "cooling"
    assert motcua.json("fire-timers") == []

    shown = motcua.json("show", view["id"])
    assert shown["data"]["fee"] == "200000"  # Decimal, printed exactly
    assert [h["action"] for h in shown["history"]] == ["started", "task_completed", "message_received"]
    human = motcua("show", view["id"]).stdout
    assert "Chờ 1 giờ" not in human and "cooling" in human and "message_received" in human


def test_errors_go_to_stderr_with_a_nonzero_exit(motcua, tmp_path):
    motcua("db", "upgrade")
    motcua("deploy", LIFECYCLE)
    error = motcua.json("start", "lifecycle_test", "--data", "{not json", expect=1)["error"]
    assert error["code"] == "validation_failed" and "data" in error["errors"]
    error = motcua.json("complete", "00000000-0000-0000-0000-000000000000", expect=1)["error"]
    assert error["code"] == "not_found"
    error = motcua.json("start", "no_such_process", expect=1)["error"]
    assert error["code"] == "not_found"
    result = motcua("show", "nope", expect=1)
    assert result.stdout == "" and result.stderr.startswith("error: ")
    bad = tmp_path / "evil.bpmn"
    bad.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    error = motcua.json("deploy", str(bad), expect=1)["error"]
    assert error["code"] == "definition_invalid" and error["file"].endswith("evil.bpmn")
    assert "Traceback" not in motcua("deploy", str(bad), expect=1).stderr


def test_lint_lists_problems_and_exits_1(motcua, tmp_path):
    motcua("db", "upgrade")
    assert motcua.json("lint", LIFECYCLE)["problems"] == []
    broken = tmp_path / "broken.bpmn"
    text = Path(LIFECYCLE).read_text().replace('targetRef="approve"', 'targetRef="nowhere"')
    text = text.replace("util.add_amounts", "no.such.operator").replace(
        "complete == True", "__import__('os')"
    )
    broken.write_text(text)
    problems = json.loads(motcua("lint", str(broken), "--json", expect=1).stdout)
    assert problems == {"file": str(broken), "problems": problems["problems"]}
    messages = " | ".join(p["message"] for p in problems["problems"])
    assert "nowhere" in messages and "no.such.operator" in messages and "__import__" in messages
    assert all(p["line"] for p in problems["problems"])


def test_an_unmigrated_database_gets_a_hint_not_a_traceback(tmp_path):
    env = {**os.environ, "MOTCUA_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"}
    result = subprocess.run(
        [sys.executable, "-m", "motcua.cli", "tasks"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 1
    assert "motcua db upgrade" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_bundled_levels_lint_clean_at_their_level(motcua, level):
    motcua("db", "upgrade")
    bpmn = Path(__file__).resolve().parents[2] / "workflows" / "bpmn" / f"dossier_l{level}.bpmn"
    assert motcua.json("lint", str(bpmn), "--level", str(level))["problems"] == []


def test_lint_level_4_without_payment_fails(motcua, tmp_path):
    motcua("db", "upgrade")
    source = (Path(__file__).resolve().parents[2] / "workflows" / "bpmn" / "dossier_l3.bpmn").read_text()
    target = tmp_path / "dossier_l4.bpmn"
    target.write_text(source.replace('"dossier_l3"', '"dossier_l4"'))
    result = json.loads(motcua("lint", str(target), "--level", "4", "--json", expect=1).stdout)
    assert any("payment" in p["message"] for p in result["problems"])
