"""``motcua serve``: gunicorn's threads and access log come from the settings."""

from __future__ import annotations

import pytest

from engine.errors import ValidationError
from motcua.server import gunicorn_options
from motcua.settings import Settings


def test_threads_and_access_log_default_to_four_and_on() -> None:
    settings = Settings.from_env({})
    assert (settings.threads, settings.access_log) == (4, True)


def test_threads_and_access_log_from_the_environment() -> None:
    settings = Settings.from_env({"MOTCUA_THREADS": "2", "MOTCUA_ACCESS_LOG": "off"})
    assert (settings.threads, settings.access_log) == (2, False)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_thread_count_names_the_variable(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"MOTCUA_THREADS": value})
    assert "MOTCUA_THREADS" in caught.value.errors


def test_gunicorn_runs_threaded_workers_with_keep_alive() -> None:
    options = gunicorn_options("127.0.0.1:8000", 3, 2, access_log=True)
    assert (options["workers"], options["threads"], options["worker_class"]) == (3, 2, "gthread")
    assert options["keepalive"] > 2 and options["accesslog"] == "-"


def test_the_access_log_can_be_switched_off() -> None:
    assert gunicorn_options("127.0.0.1:8000", 2, 4, access_log=False)["accesslog"] is None


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

    from motcua.server import _start_scheduler

    monkeypatch.setenv("MOTCUA_SCHEDULER", "off")
    monkeypatch.setenv("MOTCUA_GC_THRESHOLDS", "12121,3,45")
    before = gc.get_threshold()
    try:
        _start_scheduler(SimpleNamespace())  # gunicorn's post_worker_init, in a worker without jobs
        assert gc.get_threshold() == (12121, 3, 45)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
