"""Settings come from the environment, with defaults, and a wrong value names its variable."""

from __future__ import annotations

import pytest

from engine.errors import ValidationError
from motcua.settings import ROOT, Settings


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
