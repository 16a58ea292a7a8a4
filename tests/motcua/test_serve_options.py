"""``motcua serve``: granian's workers, threads and access log come from the settings."""

from __future__ import annotations

import pytest

from engine.errors import ValidationError
from motcua.server import server_options
from motcua.settings import Settings


def test_threads_and_access_log_default_to_two_and_on() -> None:
    settings = Settings.from_env({})
    assert (settings.threads, settings.access_log) == (2, True)


def test_threads_and_access_log_from_the_environment() -> None:
    settings = Settings.from_env({"MOTCUA_THREADS": "3", "MOTCUA_ACCESS_LOG": "off"})
    assert (settings.threads, settings.access_log) == (3, False)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_thread_count_names_the_variable(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"MOTCUA_THREADS": value})
    assert "MOTCUA_THREADS" in caught.value.errors


def test_granian_runs_the_wsgi_app_in_worker_processes_with_keep_alive() -> None:
    options = server_options("127.0.0.1", 8000, 3, 2, access_log=True)
    assert (options["workers"], options["blocking_threads"], options["interface"]) == (3, 2, "wsgi")
    assert options["target"] == "motcua.server:worker_app" and options["factory"]
    assert options["http1_settings"].keep_alive and options["log_access"]
    assert options["respawn_failed_workers"] and options["workers_kill_timeout"] > 0


def test_the_access_log_can_be_switched_off() -> None:
    assert server_options("127.0.0.1", 8000, 2, 4, access_log=False)["log_access"] is False


def test_the_options_are_granian_s() -> None:
    from granian.server import MPServer

    server = MPServer(**server_options("127.0.0.1", 8000, 2, 2, access_log=True))
    assert (server.workers, server.blocking_threads, server.websockets) == (2, 2, False)


def test_proxy_hops_default_to_none_believed() -> None:
    assert Settings.from_env({}).proxy_hops == 0
    assert Settings.from_env({"MOTCUA_PROXY_HOPS": "1"}).proxy_hops == 1


@pytest.mark.parametrize("value", ["-1", "one", "1.5"])
def test_a_bad_proxy_hop_count_names_the_variable(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"MOTCUA_PROXY_HOPS": value})
    assert "MOTCUA_PROXY_HOPS" in caught.value.errors


def test_a_served_worker_sets_the_collector_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    from types import SimpleNamespace

    from motcua.server import start_worker

    monkeypatch.setenv("MOTCUA_SCHEDULER", "off")
    monkeypatch.setenv("MOTCUA_GC_THRESHOLDS", "12121,3,45")
    before = gc.get_threshold()
    try:
        start_worker(SimpleNamespace())  # what a served worker runs after building its app, without jobs
        assert gc.get_threshold() == (12121, 3, 45)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
