"""What an official's task page reads: the task's form (workflows/task_forms/, Vietnamese titles and labelled
choices), checked when the task is completed with errors named by the form's own fields; who holds the task;
and the declaration the applicant submitted, as data with its form."""

from __future__ import annotations

from typing import Any

from dossiers.catalogue import load_workflow_forms
from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, LLTP_FORM, WORKFLOWS

JUDICIAL_RECORD = "2.000488"


def _submitted(portal: Portal) -> str:
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "form_data": LLTP_FORM}
    created = portal.call("POST", "/api/v1/dossiers", "citizen", json={**body, "delivery_method": "desk"})
    assert created.status_code == 201, created.get_json()
    return str(created.get_json()["code"])


def _review(portal: Portal) -> dict[str, Any]:
    [task] = portal.call("GET", "/api/v1/tasks", "desk").get_json()["items"]
    assert task["element_id"] == "review"
    detail = portal.call("GET", f"/api/v1/tasks/{task['id']}", "desk")
    assert detail.status_code == 200 and detail.headers["ETag"]
    found: dict[str, Any] = detail.get_json()
    return found


def _complete(portal: Portal, task: dict[str, Any], data: dict[str, Any], status: int) -> Any:
    response = portal.call("POST", f"/api/v1/tasks/{task['id']}/complete", "desk", json={"data": data})
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_every_official_task_of_the_bundled_processes_has_a_titled_form():
    forms = load_workflow_forms(WORKFLOWS)
    keys = {"reception_review", "appraisal_opinion", "leader_approval", "reception_escalation"}
    keys |= {"desk_result", "result_handover", "paper_dossier"}
    bpmn = "".join(p.read_text(encoding="utf-8") for p in (WORKFLOWS / "bpmn").rglob("*.bpmn"))
    for key in keys:
        assert f'name="formKey" value="{key}"' in bpmn
        schema = forms[key]["schema"]
        assert all(prop["title"] for prop in schema["properties"].values()), key
        assert "lltp_mau_03" in forms  # the declaration forms are still there


def test_the_review_form_has_vietnamese_labels_and_is_checked(portal: Portal):
    _submitted(portal)
    task = _review(portal)
    form = task["form"]
    assert form["id"] == "reception_review" and form["title"] == "Kiểm tra tính đầy đủ, hợp lệ của hồ sơ"
    properties = form["schema"]["properties"]
    assert properties["decision"]["title"] == "Kết quả kiểm tra"
    assert {o["const"]: o["title"] for o in properties["decision"]["oneOf"]} == {
        "accept": "Tiếp nhận hồ sơ",
        "supplement": "Yêu cầu bổ sung, hoàn thiện hồ sơ",
        "refuse": "Từ chối tiếp nhận hồ sơ",
    }
    assert properties["refusal_reason"]["title"] == "Lý do từ chối tiếp nhận"
    assert properties["supplement_items"]["items"]["type"] == "string"
    assert task["claimed_by"] is None and task["dossier_status_name"] == "Mới đăng ký"

    # Errors name the form's own fields (as the page's inputs are named), not "form_data.…".
    refused = _complete(portal, task, {"decision": "refuse"}, 422)
    assert refused["errors"] == {"refusal_reason": ["required"]}
    unlisted = _complete(portal, task, {"decision": "supplement", "supplement_items": []}, 422)
    assert set(unlisted["errors"]) == {"supplement_items"}
    assert set(_complete(portal, task, {"decision": "maybe"}, 422)["errors"]) == {"decision"}
    assert set(_complete(portal, task, {}, 422)["errors"]) == {"decision"}

    assert portal.call("POST", f"/api/v1/tasks/{task['id']}/claim", "desk").status_code == 200
    claimed = _review(portal)
    assert claimed["claimed_by"] == "desk" and claimed["claimed_at"]
    _complete(portal, task, {"decision": "refuse", "refusal_reason": "Không đúng thẩm quyền"}, 200)


def test_officials_read_the_declaration_the_applicant_submitted(portal: Portal):
    code = _submitted(portal)
    path = f"/api/v1/dossiers/{code}/declaration"
    for user in ("desk", "specialist", "citizen", "admin"):
        response = portal.call("GET", path, user)
        assert response.status_code == 200, (user, response.get_json())
        found = response.get_json()
        assert found["form"]["id"] == "lltp_mau_03" and found["form_data"] == LLTP_FORM
        assert found["form"]["schema"]["properties"]["ho_ten"]["title"] == "Họ và tên"
    for user in ("citizen2", "desk_other", "analyst"):
        assert portal.call("GET", path, user).status_code == 404, user
    assert portal.call("GET", path).status_code == 401


def test_a_dossier_not_declared_yet_has_no_declaration_data(portal: Portal):
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "desk"}
    code = portal.call("POST", "/api/v1/dossiers", "citizen", json=body).get_json()["code"]
    found = portal.call("GET", f"/api/v1/dossiers/{code}/declaration", "citizen").get_json()
    assert found["form"]["id"] == "lltp_mau_03" and found["form_data"] is None
    pdf = portal.call("GET", f"/api/v1/dossiers/{code}/documents/declaration", "citizen")
    assert pdf.status_code == 409
