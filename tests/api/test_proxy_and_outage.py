"""Behind a reverse proxy the client's address is the one the proxy saw (only when told to believe it), and a
database that cannot be reached answers 503 with Retry-After, saving nothing."""

from __future__ import annotations

from dataclasses import replace

from api import create_app
from motcua.settings import Settings
from tests.api.conftest import PASSWORD, Portal

PROXY = {"REMOTE_ADDR": "10.0.1.10"}  # every request reaches the app from the proxy's address


def _throttle(client, forwarded_for: str) -> None:
    for _ in range(5):
        response = client.post(
            "/api/v1/auth/token",
            json={"username": "leader", "password": "sai-mật-khẩu"},
            headers={"X-Forwarded-For": forwarded_for},
            environ_base=PROXY,
        )
        assert response.status_code == 401


def _login(client, forwarded_for: str, username: str = "desk") -> int:
    response = client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": PASSWORD},
        headers={"X-Forwarded-For": forwarded_for},
        environ_base=PROXY,
    )
    return int(response.status_code)


def test_behind_one_proxy_one_clients_wrong_passwords_do_not_lock_out_another(portal: Portal):
    settings = replace(Settings.from_env(), proxy_hops=1, scheduler=False)
    app = create_app(
        settings, engine=portal.engine, dossiers=portal.dossiers, accounts=portal.accounts, TESTING=True
    )
    client = app.test_client()
    _throttle(client, "203.0.113.5")  # five wrong passwords for "leader" from one address
    assert _login(client, "203.0.113.5") == 429  # that address is held back, whatever the account
    assert _login(client, "198.51.100.7") == 200  # an official at another address is not


def test_without_a_proxy_a_forged_forwarded_address_escapes_nothing(portal: Portal):
    _throttle(portal.client, "203.0.113.5")
    assert _login(portal.client, "198.51.100.7") == 429  # the header is not believed: the same real address


def test_a_database_out_of_reach_answers_503_with_retry_after():
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:9/motcua?connect_timeout=2"
    settings = replace(Settings.from_env(), database_url=unreachable, scheduler=False)
    client = create_app(settings, TESTING=True).test_client()
    for method, path, body in (
        ("GET", "/api/v1/procedures", None),
        ("POST", "/api/v1/auth/token", {"username": "leader", "password": PASSWORD}),
    ):
        response = client.open(path, method=method, json=body)
        assert response.status_code == 503, (path, response.get_data(as_text=True))
        assert response.headers["Retry-After"] == "2"
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["code"] == "database_unavailable"
    health = client.get("/healthz")
    assert health.status_code == 503
