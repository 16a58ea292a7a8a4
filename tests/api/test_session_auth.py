"""The web pages' session: an HttpOnly cookie holding a token, and the CSRF double submit for writes."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import PASSWORD, Portal
from tests.dossiers.conftest import APPLICANT

CERTIFIED_COPY = "2.000815"  # level 3, commune


def _session(portal: Portal, username: str = "citizen") -> str:
    response = portal.client.post("/api/v1/auth/session", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    assert "HttpOnly" in cookies["motcua_session"] and "SameSite=Strict" in cookies["motcua_session"]
    assert "HttpOnly" not in cookies["motcua_csrf"]
    assert body["username"] == username and body["roles"] == ["applicant"]
    assert "access_token" not in body  # the token only travels in the HttpOnly cookie
    return str(body["csrf_token"])


def test_the_cookie_logs_in_reads_and_writes_with_the_csrf_header(portal: Portal):
    csrf = _session(portal)
    assert portal.client.get("/api/v1/auth/session").get_json()["username"] == "citizen"
    assert portal.client.get("/api/v1/dossiers").status_code == 200
    body = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT}
    created = portal.client.post("/api/v1/dossiers", json=body, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.get_json()


def test_a_write_without_the_csrf_header_is_anonymous_and_changes_nothing(portal: Portal):
    _session(portal)
    body = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT}
    refused = portal.client.post("/api/v1/dossiers", json=body)
    assert refused.status_code == 401
    assert portal.client.get("/api/v1/dossiers").get_json()["page"]["total"] == 0


def test_a_wrong_csrf_header_is_forbidden(portal: Portal):
    _session(portal)
    body = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT}
    refused = portal.client.post("/api/v1/dossiers", json=body, headers={"X-CSRF-Token": "forged"})
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.get_json()["detail"]
    assert portal.client.get("/api/v1/dossiers").get_json()["page"]["total"] == 0


def test_logout_revokes_the_token_and_clears_the_cookies(portal: Portal):
    csrf = _session(portal)
    response = portal.client.delete("/api/v1/auth/session", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert any("motcua_session=;" in c for c in response.headers.getlist("Set-Cookie"))
    assert portal.client.get("/api/v1/auth/session").status_code == 401


def test_an_expired_session_leaves_public_pages_public(portal: Portal):
    _session(portal)
    portal.clock.current += timedelta(days=30)
    assert portal.client.get("/api/v1/procedures").status_code == 200
    assert portal.client.get("/api/v1/auth/session").status_code == 401
    assert portal.client.get("/api/v1/dossiers").status_code == 401


def test_wrong_password_is_refused_without_cookies(portal: Portal):
    response = portal.client.post(
        "/api/v1/auth/session", json={"username": "citizen", "password": "sai-mật-khẩu"}
    )
    assert response.status_code == 401
    assert not response.headers.getlist("Set-Cookie")


def test_bearer_header_wins_over_the_cookie(portal: Portal):
    _session(portal, "citizen")
    headers = {"Authorization": f"Bearer {portal.login('analyst')}"}
    assert portal.client.get("/api/v1/auth/session", headers=headers).get_json()["username"] == "analyst"
