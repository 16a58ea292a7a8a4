"""Each role against each resource: who is let in and who is refused (401, 403, or 404 for the unseen).

A refused caller must never reach the business rules: the expected status is the access decision itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, WORKFLOWS

JUDICIAL_RECORD = "2.000488"
ROLES = ["anonymous", "citizen", "desk", "specialist", "leader", "analyst", "admin", "integrator"]
LEVEL_1 = (WORKFLOWS / "bpmn" / "dossier_l1.bpmn").read_bytes()


def _dossier(portal: Portal) -> str:
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "desk"}
    response = portal.call("POST", "/api/v1/dossiers", "citizen", json=body)
    assert response.status_code == 201
    return str(response.get_json()["code"])


# (method, path template, body kind) -> the status each role gets.  "ok" stands for the success status.
MATRIX = {
    ("GET", "/api/v1/procedures", None): dict.fromkeys(ROLES, 200),
    ("GET", "/api/v1/procedures/{procedure}", None): dict.fromkeys(ROLES, 200),
    ("PUT", "/api/v1/procedures/{procedure}/binding", "binding"): {
        **dict.fromkeys(ROLES, 403),
        "anonymous": 401,
        "analyst": 200,
        "admin": 200,
    },
    ("GET", "/api/v1/dossiers/{dossier}", None): {
        **dict.fromkeys(ROLES, 404),
        "anonymous": 401,
        "citizen": 200,
        "desk": 200,
        "specialist": 200,
        "leader": 200,
        "admin": 200,
    },
    ("GET", "/api/v1/dossiers", None): {**dict.fromkeys(ROLES, 200), "anonymous": 401},
    ("POST", "/api/v1/dossiers", "dossier"): {
        **dict.fromkeys(ROLES, 403),
        "anonymous": 401,
        "citizen": 201,
        "admin": 201,
    },
    ("GET", "/api/v1/tasks", None): {
        **dict.fromkeys(ROLES, 200),
        "anonymous": 401,
        "analyst": 403,
        "integrator": 403,
    },
    ("GET", "/api/v1/definitions", None): {
        **dict.fromkeys(ROLES, 403),
        "anonymous": 401,
        "analyst": 200,
        "admin": 200,
    },
    ("POST", "/api/v1/definitions", "bpmn"): {
        **dict.fromkeys(ROLES, 403),
        "anonymous": 401,
        "analyst": 201,
        "admin": 201,
    },
    ("POST", "/api/v1/processes/dossier_l1/instances", "start"): {
        **dict.fromkeys(ROLES, 403),
        "anonymous": 401,
        "integrator": 201,
        "admin": 201,
    },
    ("POST", "/api/v1/messages", "message"): {
        **dict.fromkeys(ROLES, 403),
        "anonymous": 401,
        "integrator": 404,
        "admin": 404,
    },
}

BODIES = {
    "binding": {"json": {"bpmn": "dossier_l4"}},
    "dossier": {
        "json": {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "desk"}
    },
    "bpmn": {"data": LEVEL_1, "content_type": "application/xml"},
    "start": {"json": {"data": {}}},
    "message": {"json": {"name": "nobody.waits", "correlation": {"dossier_code": "none"}}},
}


@pytest.mark.parametrize(("method", "template", "body"), list(MATRIX))
def test_access_matrix(portal: Portal, method: str, template: str, body: str | None):
    code = _dossier(portal)
    path = template.format(procedure=JUDICIAL_RECORD, dossier=code)
    seen = {}
    for role in ROLES:
        kwargs = dict(BODIES[body]) if body else {}
        response = portal.call(method, path, None if role == "anonymous" else role, **kwargs)
        seen[role] = response.status_code
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json", (role, response.data[:200])
    assert seen == MATRIX[(method, template, body)]


def test_dossier_documents_follow_the_dossier(portal: Portal):
    code = _dossier(portal)
    path = f"/api/v1/dossiers/{code}/documents/control_slip"
    assert portal.call("GET", path).status_code == 401
    assert portal.call("GET", path, "desk_other").status_code == 404
    assert portal.call("GET", path, "citizen2").status_code == 404
    for user in ("citizen", "desk", "leader"):
        response = portal.call("GET", path, user)
        assert response.status_code == 200 and response.data.startswith(b"%PDF")


def test_no_endpoint_is_left_unguarded(portal: Portal):
    """Every operation of the OpenAPI document is either in the matrix, public, or covered elsewhere."""
    spec = portal.call("GET", "/api/v1/openapi.json").get_json()
    public = {
        "/api/v1/procedures",
        "/api/v1/procedures/{code}",
        "/api/v1/procedures/{code}/forms/{form_id}",
        "/api/v1/procedures/{code}/forms/{form_id}/schema",
        "/api/v1/auth/token",
        "/api/v1/auth/session",  # logging in; the cookie and CSRF rules: tests/api/test_session_auth.py
        "/api/v1/stats/visits",
        "/api/v1/track/{code}",  # non-personal tracking by dossier code (tests/api/test_tracking.py)
        "/api/v1/results/{code}",  # a signed, expiring link is the credential (tests/api/test_results_api.py)
        # VNPay's merchant signature is the credential (tests/api/test_payments_api.py, tests/payments/)
        "/api/v1/payments/vnpay/ipn",
        "/api/v1/payments/vnpay/return",
    }
    for path, operations in spec["paths"].items():
        for method in operations:
            if path in public or method == "parameters":
                continue
            secured = operations[method].get("security")
            assert secured, f"{method.upper()} {path} documents no security requirement"
    assert Path(__file__).exists()
