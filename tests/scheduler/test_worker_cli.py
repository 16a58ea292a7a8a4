"""``motcua worker`` from the command line: one pass with --once, refusals of bad options, JSON output."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from engine.runtime import SystemClock
from motcua import cli
from tests.engine.conftest import bpmn_file
from tests.scheduler.test_workers import _engine


def _run(db_url, *args):
    env = {"MOTCUA_DATABASE_URL": db_url, "MOTCUA_FAULTS": ""}
    return CliRunner().invoke(cli.main, ["worker", *args], env=env, catch_exceptions=False)


def test_once_fires_what_is_due_and_reports_each_job(db_url):
    engine = _engine(db_url)
    engine.deploy([bpmn_file("timer_wait.bpmn")])
    past = (SystemClock().now() - timedelta(seconds=5)).isoformat()
    future = (SystemClock().now() + timedelta(hours=1)).isoformat()
    due = [engine.start("timer_wait", {"fire_at": past})["id"] for _ in range(3)]
    later = engine.start("timer_wait", {"fire_at": future})["id"]
    result = _run(db_url, "--once", "--json", "--jobs", "fire_timers,run_retries,release_claims")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["jobs"]["fire_timers"] == {"items": 3, "fired": 3, "skipped": 0, "failed": 0}
    assert report["jobs"]["run_retries"]["items"] == 0
    assert report["jobs"]["release_claims"] == {"items": 0, "released": 0}
    assert {_engine(db_url).show(i)["status"] for i in due} == {"completed"}
    assert _engine(db_url).show(later)["status"] == "running"
    plain = _run(db_url, "--once", "--jobs", "fire_timers")
    assert plain.exit_code == 0 and plain.stdout.startswith("fire_timers\t0\t")


def test_unknown_jobs_and_bad_numbers_are_refused(db_url):
    result = _run(db_url, "--once", "--jobs", "fire_timers,mine_bitcoin", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stderr)["error"]
    assert "mine_bitcoin" in error["message"] and "jobs" in error["errors"]
    result = _run(db_url, "--once", "--tick", "0")
    assert result.exit_code != 0 and "--tick" in result.output + result.stderr


def test_the_worker_sets_the_collector_thresholds_and_refuses_bad_ones(db_url):
    import gc

    before = gc.get_threshold()
    env = {"MOTCUA_DATABASE_URL": db_url, "MOTCUA_FAULTS": "", "MOTCUA_GC_THRESHOLDS": "23456,7,89"}
    try:
        result = CliRunner().invoke(cli.main, ["worker", "--once", "--jobs", "fire_timers"], env=env)
        assert result.exit_code == 0, result.output
        assert gc.get_threshold() == (23456, 7, 89)
    finally:
        gc.set_threshold(*before)
    env["MOTCUA_GC_THRESHOLDS"] = "23456"
    refused = CliRunner().invoke(cli.main, ["worker", "--once", "--json"], env=env)
    assert refused.exit_code == 1 and "MOTCUA_GC_THRESHOLDS" in json.loads(refused.stderr)["error"]["errors"]
    assert gc.get_threshold() == before
