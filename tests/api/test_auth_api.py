"""Logging in and out over HTTP: tokens, revocation, throttling, API keys."""

from __future__ import annotations

from tests.api.conftest import PASSWORD, Portal


def test_login_logout_and_revocation(portal: Portal):
    token = portal.login("citizen")
    assert (
        portal.call("GET", "/api/v1/dossiers", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    assert (
        portal.call("DELETE", "/api/v1/auth/token", headers={"Authorization": f"Bearer {token}"}).status_code
        == 204
    )
    revoked = portal.call("GET", "/api/v1/dossiers", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401 and revoked.mimetype == "application/problem+json"
    assert portal.call("GET", "/api/v1/dossiers", headers={"Authorization": "Basic abc"}).status_code == 401


def test_wrong_passwords_are_throttled(portal: Portal):
    for _ in range(5):
        wrong = portal.client.post(
            "/api/v1/auth/token", json={"username": "leader", "password": "sai-mat-khau!"}
        )
        assert wrong.status_code == 401
    throttled = portal.client.post("/api/v1/auth/token", json={"username": "leader", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    missing = portal.client.post("/api/v1/auth/token", json={"username": "leader"})
    assert missing.status_code == 422 and "password" in missing.get_json()["errors"]


def test_token_expiry(portal: Portal):
    token = portal.login("desk")
    portal.clock.advance(hours=9)
    expired = portal.call("GET", "/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401


def test_api_key_scopes(portal: Portal):
    key, _ = portal.accounts.create_api_key("integrator", name="cổng DVC", scopes=["messages:send"])
    headers = {"X-API-Key": key}
    start = portal.call("POST", "/api/v1/processes/dossier_l1/instances", json={"data": {}}, headers=headers)
    assert start.status_code == 403
    message = {"name": "nobody.waits", "correlation": {"dossier_code": "x"}}
    assert portal.call("POST", "/api/v1/messages", json=message, headers=headers).status_code == 404
    portal.accounts.revoke_api_key(key[:8])
    assert portal.call("POST", "/api/v1/messages", json=message, headers=headers).status_code == 401


def test_nul_bytes_are_refused_before_reaching_the_database(portal: Portal):
    login = portal.client.post("/api/v1/auth/token", json={"username": "a\u0000", "password": "x"})
    assert login.status_code == 422 and login.mimetype == "application/problem+json"
    for path in ("/api/v1/procedures/a%00", "/api/v1/definitions?key=a%00"):
        response = portal.call("GET", path, "admin")
        assert response.status_code == 422, (path, response.get_json())
