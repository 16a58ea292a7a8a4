"""Settings come from the environment, with defaults, and a wrong value names its variable."""

from __future__ import annotations

import gc

import pytest

from engine.errors import ValidationError
from motcua.settings import ROOT, Settings, tune_collector


def test_defaults():
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite:///{ROOT / 'var' / 'motcua.db'}"
    assert (settings.host, settings.port, settings.script_time_limit) == ("127.0.0.1", 8000, 2.0)


def test_values_from_the_environment():
    settings = Settings.from_env(
        {
            "MOTCUA_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
            "MOTCUA_SERVICE_RETRIES": "5",
            "MOTCUA_SCRIPT_TIME_LIMIT": "0.5",
        }
    )
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert (settings.service_retries, settings.script_time_limit) == (5, 0.5)


def test_a_bad_number_names_the_variable():
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"MOTCUA_PORT": "eighty"})
    assert "MOTCUA_PORT" in caught.value.errors


def test_background_work_and_payment_settings():
    settings = Settings.from_env(
        {
            "MOTCUA_SCHEDULER": "off",
            "MOTCUA_SCHEDULER_TICK": "0.25",
            "MOTCUA_PAYMENT_SANDBOX": "on",
            "MOTCUA_PAYMENT_PROVIDERS": "000.00.14.H26=vnpay, 000.01.01.H26 = vnpay",
            "MOTCUA_PUBLIC_URL": "https://dichvucong.example.vn/",
        }
    )
    assert (settings.scheduler, settings.scheduler_tick, settings.payment_sandbox) == (False, 0.25, True)
    assert settings.payment_providers == (("000.00.14.H26", "vnpay"), ("000.01.01.H26", "vnpay"))
    assert settings.public_url == "https://dichvucong.example.vn"
    assert (settings.vnpay_hash_secret, settings.link_secret) == (None, None)  # never a default secret


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MOTCUA_SCHEDULER", "maybe"),
        ("MOTCUA_PAYMENT_SANDBOX", "2"),
        ("MOTCUA_SCHEDULER_TICK", "0"),
        ("MOTCUA_TIMER_LEASE", "-5"),
        ("MOTCUA_PAYMENT_PROVIDERS", "000.00.14.H26"),
        ("MOTCUA_PAYMENT_PROVIDERS", "=vnpay"),
    ],
)
def test_a_bad_switch_number_or_pair_names_the_variable(name, value):
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({name: value})
    assert name in caught.value.errors and name in caught.value.message


def test_collector_thresholds_default_and_from_the_environment() -> None:
    assert Settings.from_env({}).gc_thresholds == (2000, 20, 250)
    settings = Settings.from_env({"MOTCUA_GC_THRESHOLDS": " 700, 10 ,10 "})
    assert settings.gc_thresholds == (700, 10, 10)


@pytest.mark.parametrize("value", ["10000", "10000,10", "a,b,c", "0,10,100", "-1,10,100", "1,2,3,4"])
def test_bad_collector_thresholds_name_the_variable(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"MOTCUA_GC_THRESHOLDS": value})
    assert "MOTCUA_GC_THRESHOLDS" in caught.value.errors


def test_tune_collector_sets_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_collector(Settings.from_env({"MOTCUA_GC_THRESHOLDS": "12345,6,78"}))
        assert gc.get_threshold() == (12345, 6, 78)
    finally:
        gc.set_threshold(*before)
