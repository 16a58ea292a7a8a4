"""Public tracking by dossier code: anyone with the code sees where the dossier stands, nothing personal."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, COPY_FORM

CERTIFIED_COPY = "2.000815"  # level 3, commune agency: reception user "desk_other"
PUBLIC_FIELDS = {
    "code",
    "procedure_code",
    "procedure_name",
    "agency_code",
    "agency_name",
    "status",
    "received_at",
    "due_at",
    "finished_at",
    "outcome",
}


def _submitted(portal: Portal) -> str:
    body = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT, "form_data": COPY_FORM}
    response = portal.call("POST", "/api/v1/dossiers", "citizen", json=body)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["code"])


def _track(portal: Portal, code: str, user: str | None = None) -> Any:
    return portal.call("GET", f"/api/v1/track/{code}", user)


def test_anyone_tracks_a_dossier_by_its_code_without_personal_data(portal: Portal):
    code = _submitted(portal)
    response = _track(portal, code)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    found = response.get_json()
    assert set(found) == PUBLIC_FIELDS
    assert found["code"] == code and found["procedure_code"] == CERTIFIED_COPY
    assert found["procedure_name"].startswith("Chứng thực bản sao từ bản chính")
    assert found["agency_code"] == "000.01.01.H26" and found["agency_name"].startswith("Ủy ban nhân dân")
    assert found["status"] == {"code": 1, "name": "Mới đăng ký"}
    assert (found["received_at"], found["due_at"], found["finished_at"], found["outcome"]) == (None,) * 4
    text = response.get_data(as_text=True)
    for personal in (APPLICANT["name"], APPLICANT["id_number"], APPLICANT["phone"], COPY_FORM["so_giay_to"]):
        assert personal not in text

    [review] = [t for t in portal.dossiers.dossier(code)["tasks"] if t["element_id"] == "review"]
    portal.dossiers.complete_task(review["id"], {"decision": "accept"}, actor="desk_other")
    received = _track(portal, code, "citizen2").get_json()  # a logged-in stranger sees the same
    assert received["status"]["code"] == 4 and received["received_at"] and received["due_at"]
    assert received == _track(portal, code).get_json()


def test_unknown_and_malformed_codes_are_the_same_404(portal: Portal):
    _submitted(portal)
    answers = [_track(portal, code) for code in ("000.01.01.H26-990101-0001", "x", "%27%20OR%201%3D1")]
    for response in answers:
        assert response.status_code == 404 and response.mimetype == "application/problem+json"
        assert set(response.get_json()) >= {"type", "title", "status", "detail"}
        assert "applicant" not in response.get_json()


def test_the_openapi_document_describes_tracking_as_public(portal: Portal):
    spec = portal.call("GET", "/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/track/{code}"]["get"]
    assert operation["security"] == [] and {"200", "404"} <= set(operation["responses"])
    properties = spec["components"]["schemas"]["Tracked"]["properties"]
    assert set(properties) == PUBLIC_FIELDS
