"""Analysts' endpoints: deploy BPMN (multipart or XML), list versions, read the XML, lint at a level, bind."""

from __future__ import annotations

import io

from tests.api.conftest import Portal
from tests.dossiers.conftest import WORKFLOWS

LEVEL_3 = (WORKFLOWS / "bpmn" / "dossier_l3.bpmn").read_bytes()
CUSTOM = LEVEL_3.replace(b'id="dossier_l3"', b'id="chung_thuc_l3"')


def test_deploy_list_and_read_back(portal: Portal):
    upload = {"file": (io.BytesIO(CUSTOM), "chung_thuc_l3.bpmn")}
    first = portal.call(
        "POST", "/api/v1/definitions", "analyst", data=upload, content_type="multipart/form-data"
    )
    assert first.status_code == 201, first.get_json()
    [deployed] = first.get_json()
    assert (deployed["key"], deployed["version"], deployed["created"]) == ("chung_thuc_l3", 1, True)
    again = portal.call("POST", "/api/v1/definitions", "analyst", data=CUSTOM, content_type="application/xml")
    assert again.get_json()[0]["created"] is False
    versions = portal.call("GET", "/api/v1/definitions?key=chung_thuc_l3", "analyst").get_json()
    assert [(v["version"], v["deployed_by"]) for v in versions] == [(1, "analyst")]
    xml = portal.call("GET", "/api/v1/definitions/chung_thuc_l3/versions/1/xml", "analyst")
    assert xml.status_code == 200 and xml.data == CUSTOM
    assert (
        portal.call("GET", "/api/v1/definitions/chung_thuc_l3/versions/9/xml", "analyst").status_code == 404
    )

    bound = portal.call(
        "PUT", "/api/v1/procedures/2.000815/binding", "analyst", json={"bpmn": "chung_thuc_l3"}
    )
    assert bound.status_code == 200 and bound.get_json()["bpmn"] == "chung_thuc_l3"
    refused = portal.call(
        "PUT", "/api/v1/procedures/2.000488/binding", "analyst", json={"bpmn": "chung_thuc_l3"}
    )
    assert refused.status_code == 422 and "does not conform" in refused.get_json()["detail"]


def test_bad_uploads_are_refused_with_reasons(portal: Portal):
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    response = portal.call(
        "POST",
        "/api/v1/definitions",
        "analyst",
        data=evil,
        content_type="application/xml",
        headers={"X-Filename": "evil.bpmn"},
    )
    assert response.status_code == 422 and response.get_json()["file"] == "evil.bpmn"
    wrong_type = portal.call("POST", "/api/v1/definitions", "analyst", data="x", content_type="text/plain")
    assert wrong_type.status_code == 415 and wrong_type.mimetype == "application/problem+json"
    empty = portal.call("POST", "/api/v1/definitions", "analyst", data={}, content_type="multipart/form-data")
    assert empty.status_code == 422 and "file" in empty.get_json()["errors"]
    huge = b"<x>" + b" " * (21 * 1024 * 1024) + b"</x>"
    too_big = portal.call("POST", "/api/v1/definitions", "analyst", data=huge, content_type="application/xml")
    assert too_big.status_code == 413 and too_big.mimetype == "application/problem+json"


def test_lint_at_a_level(portal: Portal):
    clean = portal.call(
        "POST", "/api/v1/definitions/lint?level=3", "analyst", data=LEVEL_3, content_type="application/xml"
    )
    assert clean.status_code == 200 and clean.get_json()["problems"] == []
    lacking = portal.call(
        "POST", "/api/v1/definitions/lint?level=4", "analyst", data=LEVEL_3, content_type="application/xml"
    )
    messages = [p["message"] for p in lacking.get_json()["problems"]]
    assert any("payment" in m for m in messages) and all(p["line"] for p in lacking.get_json()["problems"])
    assert (
        portal.call(
            "POST",
            "/api/v1/definitions/lint?level=7",
            "analyst",
            data=LEVEL_3,
            content_type="application/xml",
        ).status_code
        == 422
    )
