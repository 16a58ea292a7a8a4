"""Analysts' drafts: saved, read back, listed, replaced and thrown away per analyst; parsed as safely as a
deployment; never a version until deployed; closed to everyone but analysts and admins."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import Portal
from tests.dossiers.conftest import WORKFLOWS

LEVEL_3 = (WORKFLOWS / "bpmn" / "dossier_l3.bpmn").read_text(encoding="utf-8")
# Unfinished on purpose: a process with a start event only. A draft needs to be safe XML, not a valid process.
SKETCH = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_sketch"
                  targetNamespace="http://motcua.gov.vn/bpmn">
  <bpmn:process id="chung_thuc_moi" name="Chứng thực bản sao (nháp)" isExecutable="true">
    <bpmn:startEvent id="start" />
  </bpmn:process>
</bpmn:definitions>
"""
DRAFTS = "/api/v1/definitions/drafts"


def draft_path(key: str) -> str:
    return f"/api/v1/definitions/{key}/draft"


def test_save_read_list_replace_and_delete(portal: Portal):
    saved = portal.call("PUT", draft_path("dossier_l3"), "analyst", json={"xml": LEVEL_3, "base_version": 1})
    assert saved.status_code == 200, saved.get_json()
    summary = saved.get_json()
    assert (summary["key"], summary["owner"], summary["base_version"]) == ("dossier_l3", "analyst", 1)
    assert summary["name"].startswith("Dịch vụ công trực tuyến mức độ 3")
    assert summary["size"] == len(LEVEL_3.encode("utf-8")) and "xml" not in summary

    read = portal.call("GET", draft_path("dossier_l3"), "analyst").get_json()
    assert read["xml"] == LEVEL_3 and read["sha256"] == summary["sha256"]

    portal.clock.current += timedelta(minutes=5)
    sketch = portal.call(
        "PUT", draft_path("chung_thuc_moi"), "analyst", data=SKETCH.encode(), content_type="application/xml"
    )
    assert sketch.status_code == 200 and sketch.get_json()["base_version"] is None
    listed = portal.call("GET", DRAFTS, "analyst").get_json()
    assert [d["key"] for d in listed] == ["chung_thuc_moi", "dossier_l3"]  # latest saved first
    assert all("xml" not in d for d in listed)

    portal.clock.current += timedelta(minutes=5)
    renamed = LEVEL_3.replace("Nộp hồ sơ trực tuyến", "Nộp hồ sơ điện tử")
    again = portal.call("PUT", draft_path("dossier_l3"), "analyst", json={"xml": renamed})
    replaced = again.get_json()
    assert replaced["created_at"] == summary["created_at"] and replaced["updated_at"] > summary["updated_at"]
    assert replaced["base_version"] is None
    assert portal.call("GET", draft_path("dossier_l3"), "analyst").get_json()["xml"] == renamed
    assert [d["key"] for d in portal.call("GET", DRAFTS, "analyst").get_json()] == [
        "dossier_l3",
        "chung_thuc_moi",
    ]

    assert portal.call("DELETE", draft_path("dossier_l3"), "analyst").status_code == 204
    assert portal.call("GET", draft_path("dossier_l3"), "analyst").status_code == 404
    assert portal.call("DELETE", draft_path("dossier_l3"), "analyst").status_code == 404
    assert [d["key"] for d in portal.call("GET", DRAFTS, "analyst").get_json()] == ["chung_thuc_moi"]


def test_each_analyst_has_their_own_draft(portal: Portal):
    mine = LEVEL_3.replace("Nộp hồ sơ trực tuyến", "Bản của người phân tích")
    theirs = LEVEL_3.replace("Nộp hồ sơ trực tuyến", "Bản của quản trị")
    assert portal.call("PUT", draft_path("dossier_l3"), "analyst", json={"xml": mine}).status_code == 200
    assert portal.call("PUT", draft_path("dossier_l3"), "admin", json={"xml": theirs}).status_code == 200
    assert portal.call("GET", draft_path("dossier_l3"), "analyst").get_json()["xml"] == mine
    assert portal.call("GET", draft_path("dossier_l3"), "admin").get_json()["xml"] == theirs
    assert portal.call("DELETE", draft_path("dossier_l3"), "admin").status_code == 204
    assert portal.call("GET", draft_path("dossier_l3"), "analyst").get_json()["xml"] == mine
    assert portal.call("GET", DRAFTS, "admin").get_json() == []


def test_a_draft_never_becomes_a_version_until_deployed(portal: Portal):
    before = portal.call("GET", "/api/v1/definitions?key=chung_thuc_moi", "analyst").get_json()
    portal.call("PUT", draft_path("chung_thuc_moi"), "analyst", json={"xml": SKETCH})
    assert portal.call("GET", "/api/v1/definitions?key=chung_thuc_moi", "analyst").get_json() == before == []
    changed = LEVEL_3.replace("Nộp hồ sơ trực tuyến", "Nộp hồ sơ điện tử")
    portal.call("PUT", draft_path("dossier_l3"), "analyst", json={"xml": changed})
    versions = portal.call("GET", "/api/v1/definitions?key=dossier_l3", "analyst").get_json()
    assert [v["version"] for v in versions] == [1]
    deployed = portal.call(
        "POST", "/api/v1/definitions", "analyst", data=changed.encode(), content_type="application/xml"
    )
    assert deployed.status_code == 201 and deployed.get_json()[0]["version"] == 2
    # Deploying keeps the draft: the analyst throws it away when they are done with it.
    assert portal.call("GET", draft_path("dossier_l3"), "analyst").status_code == 200


@pytest.mark.parametrize(
    ("body", "field_or_message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&e;</bpmn:definitions>',
            "DOCTYPE",
        ),
        ("<bpmn:definitions", "not well-formed"),
        ('<x id="chung_thuc_moi"/>', "xml"),
        (SKETCH.replace('id="chung_thuc_moi"', 'id="khac"'), "xml"),
        ("", "xml"),
    ],
)
def test_unsafe_or_foreign_documents_are_refused(portal: Portal, body: str, field_or_message: str):
    response = portal.call("PUT", draft_path("chung_thuc_moi"), "analyst", json={"xml": body})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert field_or_message in problem.get("errors", {}) or field_or_message in problem["detail"], problem
    assert portal.call("GET", DRAFTS, "analyst").get_json() == []


def test_size_and_key_limits(portal: Portal):
    padding = " " * (5 * 1024 * 1024)
    huge = SKETCH.replace("<bpmn:process", padding + "<bpmn:process")
    too_big = portal.call("PUT", draft_path("chung_thuc_moi"), "analyst", json={"xml": huge})
    assert too_big.status_code == 422 and "xml" in too_big.get_json()["errors"]
    raw = portal.call(
        "PUT", draft_path("chung_thuc_moi"), "analyst", data=huge.encode(), content_type="application/xml"
    )
    assert raw.status_code == 422
    bad_key = portal.call("PUT", draft_path("1-not-an-id"), "analyst", json={"xml": SKETCH})
    assert bad_key.status_code == 422 and "key" in bad_key.get_json()["errors"]
    wrong_type = portal.call(
        "PUT", draft_path("chung_thuc_moi"), "analyst", data="x", content_type="text/plain"
    )
    assert wrong_type.status_code == 415 and wrong_type.mimetype == "application/problem+json"
    version = portal.call(
        "PUT", draft_path("chung_thuc_moi"), "analyst", json={"xml": SKETCH, "base_version": 0}
    )
    assert version.status_code == 422 and "base_version" in version.get_json()["errors"]


ROLES = ["citizen", "desk", "specialist", "leader", "integrator"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", DRAFTS),
        ("GET", draft_path("dossier_l3")),
        ("PUT", draft_path("dossier_l3")),
        ("DELETE", draft_path("dossier_l3")),
        ("GET", "/api/v1/definitions/operators"),
    ],
)
def test_only_analysts_and_admins_reach_drafts(portal: Portal, method: str, path: str):
    portal.call("PUT", draft_path("dossier_l3"), "analyst", json={"xml": LEVEL_3})
    body = {"json": {"xml": LEVEL_3}} if method == "PUT" else {}
    assert portal.call(method, path, None, **body).status_code == 401
    for role in ROLES:
        response = portal.call(method, path, role, **body)
        assert response.status_code == 403, (role, response.get_json())
        assert response.mimetype == "application/problem+json"
    assert portal.call("GET", draft_path("dossier_l3"), "analyst").get_json()["xml"] == LEVEL_3


def test_operators_are_the_engines_handlers(portal: Portal):
    operators = portal.call("GET", "/api/v1/definitions/operators", "analyst").get_json()["operators"]
    assert operators == sorted(operators)
    assert {"payment.request", "delivery.online", "delivery.post", "forms.prefill"} <= set(operators)
