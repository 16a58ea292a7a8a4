"""GET /api/v1/instances/{id} and its diagrams: where an instance stands, for the people who may watch it."""

from __future__ import annotations

import pytest

from dossiers.monitoring import DATA_VALUE_LIMIT, capped_data
from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, LLTP_FORM, WORKFLOWS

JUDICIAL_RECORD = "2.000488"  # level 4, police of the province: the agency of desk, specialist, leader
ROLES = ["anonymous", "citizen", "citizen2", "desk", "specialist", "leader", "desk_other", "analyst"]
ROLES += ["admin", "integrator"]
# Applicants never (not even the owner: this is internal data); officials of another agency: not found.
EXPECTED = {
    "anonymous": 401,
    "citizen": 403,
    "citizen2": 403,
    "desk": 200,
    "specialist": 200,
    "leader": 200,
    "desk_other": 404,
    "analyst": 200,
    "admin": 200,
    "integrator": 403,
}


def _complete(portal: Portal, user: str, code: str, element_id: str, data: dict) -> None:
    items = portal.call("GET", "/api/v1/tasks", user).get_json()["items"]
    [task] = [t for t in items if t["dossier_code"] == code and t["element_id"] == element_id]
    response = portal.call("POST", f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
    assert response.status_code == 200, response.get_json()


def _waiting_for_payment(portal: Portal) -> tuple[str, str]:
    """A judicial-record dossier accepted at the desk and waiting for its online payment."""
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "desk"}
    created = portal.call("POST", "/api/v1/dossiers", "citizen", json=body)
    assert created.status_code == 201, created.get_json()
    code = created.get_json()["code"]
    _complete(portal, "citizen", code, "information", {})
    _complete(portal, "citizen", code, "submit_online", {"form_data": LLTP_FORM})
    _complete(portal, "desk", code, "review", {"decision": "accept"})
    dossier = portal.call("GET", f"/api/v1/dossiers/{code}", "desk").get_json()
    assert dossier["status"]["code"] == 6
    return code, portal.dossiers.dossier(code)["instance_id"]


@pytest.fixture
def waiting(portal: Portal) -> tuple[str, str]:
    return _waiting_for_payment(portal)


def test_who_may_watch_an_instance_and_read_its_diagrams(portal: Portal, waiting):
    _, instance_id = waiting
    paths = [
        f"/api/v1/instances/{instance_id}",
        f"/api/v1/instances/{instance_id}/processes/dossier_l4/xml",
        f"/api/v1/instances/{instance_id}/processes/frag_payment/xml",
    ]
    for path in paths:
        got = {
            role: portal.call("GET", path, None if role == "anonymous" else role).status_code
            for role in ROLES
        }
        assert got == EXPECTED, path


def test_the_instance_shows_where_it_stands_on_each_diagram(portal: Portal, waiting):
    code, instance_id = waiting
    response = portal.call("GET", f"/api/v1/instances/{instance_id}", "desk")
    assert response.status_code == 200, response.get_json()
    shown = response.get_json()
    assert shown["definition"] == {"key": "dossier_l4", "version": 1}
    assert shown["status"] == "running" and shown["business_key"] == code
    assert shown["dossier"]["code"] == code and shown["dossier"]["status"]["code"] == 6

    processes = {p["process_key"]: p for p in shown["processes"]}
    assert [p["process_key"] for p in shown["processes"]] == ["dossier_l4", "frag_reception", "frag_payment"]
    main = processes["dossier_l4"]
    assert main["called_from"] is None and main["version"] == 1
    assert {"start_l4", "information", "submit_online", "call_reception"} <= set(main["completed"])
    assert main["active"] == ["call_payment"]
    reception = processes["frag_reception"]
    assert reception["called_from"] == {"process_key": "dossier_l4", "element_id": "call_reception"}
    assert "review" in reception["completed"] and reception["active"] == []
    assert processes["frag_payment"]["active"] == ["payment_expiry", "wait_payment"]

    [timer] = shown["timers"]
    assert (timer["element_id"], timer["kind"], timer["process_key"]) == (
        "payment_expiry",
        "timer",
        "frag_payment",
    )
    assert timer["due"] is False
    [wait] = shown["subscriptions"]
    assert (wait["message_name"], wait["element_id"]) == ("payment.confirmed", "wait_payment")
    assert shown["incidents"] == [] and shown["tasks"] == []
    trail = [(h["action"], h["element_id"], h["actor"]) for h in shown["history"]]
    assert trail[0] == ("started", None, "citizen")
    assert ("task_completed", "submit_online", "citizen") in trail
    assert ("task_completed", "review", "desk") in trail
    assert shown["data"]["dossier_code"] == code and shown["data_truncated"] == []


def test_diagrams_are_the_versions_the_instance_runs(portal: Portal, waiting):
    _, instance_id = waiting
    # A newer fragment deployed later does not change the diagram of an instance bound to the older one.
    fragment = (WORKFLOWS / "bpmn" / "fragments" / "frag_payment.bpmn").read_bytes()
    changed = fragment.replace(b"</bpmn:definitions>", b"<!-- v2 --></bpmn:definitions>")
    portal.engine.deploy([("frag_payment.bpmn", changed)], deployed_by="analyst")
    shown = portal.call("GET", f"/api/v1/instances/{instance_id}", "analyst").get_json()
    assert {p["process_key"]: p["version"] for p in shown["processes"]}["frag_payment"] == 1

    xml = portal.call("GET", f"/api/v1/instances/{instance_id}/processes/frag_payment/xml", "leader")
    assert xml.status_code == 200 and xml.mimetype == "application/xml"
    assert b'id="wait_payment"' in xml.data and b"v2" not in xml.data
    main = portal.call("GET", f"/api/v1/instances/{instance_id}/processes/dossier_l4/xml", "specialist")
    assert main.data == (WORKFLOWS / "bpmn" / "dossier_l4.bpmn").read_bytes()
    # Only processes this instance ran: the delivery fragment has not started yet.
    missing = portal.call("GET", f"/api/v1/instances/{instance_id}/processes/frag_delivery/xml", "desk")
    assert missing.status_code == 404


def test_unknown_instances_and_instances_without_a_dossier(portal: Portal):
    assert portal.call("GET", "/api/v1/instances/no-such-instance", "analyst").status_code == 404
    assert portal.call("GET", "/api/v1/instances/no-such-instance", "desk").status_code == 404
    assert portal.call("GET", "/api/v1/instances/no-such-instance", "citizen").status_code == 403
    started = portal.call(
        "POST", "/api/v1/processes/dossier_l1/instances", "integrator", json={"data": {"note": "thử"}}
    )
    assert started.status_code == 201, started.get_json()
    instance_id = started.get_json()["id"]
    shown = portal.call("GET", f"/api/v1/instances/{instance_id}", "admin").get_json()
    assert shown["dossier"] is None and shown["definition"]["key"] == "dossier_l1"
    assert shown["processes"][0]["active"] == ["information"]
    # No dossier, so no agency: no official watches it.
    assert portal.call("GET", f"/api/v1/instances/{instance_id}", "desk").status_code == 404


def test_large_variables_are_replaced_by_a_marker():
    big = "x" * (DATA_VALUE_LIMIT + 1)
    data, truncated = capped_data(
        {"small": {"a": 1}, "big": big, "when": __import__("datetime").date(2026, 3, 2)}
    )
    assert data["small"] == {"a": 1} and data["when"] == "2026-03-02"
    assert data["big"] == {"truncated": True, "bytes": len(big) + 2}
    assert truncated == ["big"]
