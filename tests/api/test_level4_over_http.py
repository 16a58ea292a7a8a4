"""A level-4 dossier driven end to end over HTTP only, from submission to result, with the access rules."""

from __future__ import annotations

from sqlalchemy import event

from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, LLTP_FORM

JUDICIAL_RECORD = "2.000488"


def _only_task(portal: Portal, user: str, element_id: str) -> dict:
    response = portal.call("GET", "/api/v1/tasks", user)
    assert response.status_code == 200, response.get_json()
    items = response.get_json()["items"]
    assert [t["element_id"] for t in items] == [element_id], items
    return items[0]


def _complete(portal: Portal, user: str, task: dict, data: dict, status: int = 200) -> dict:
    response = portal.call("POST", f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_level_4_dossier_over_http(portal: Portal):
    # The public catalogue needs no login.
    listed = portal.call("GET", "/api/v1/procedures?q=ly lich tu phap").get_json()
    assert [p["code"] for p in listed["items"]] == [JUDICIAL_RECORD]
    form = portal.call("GET", f"/api/v1/procedures/{JUDICIAL_RECORD}/forms/lltp_mau_03")
    assert form.status_code == 200 and form.mimetype == "application/pdf"

    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "post"}
    assert portal.call("POST", "/api/v1/dossiers", json=body).status_code == 401
    assert portal.call("POST", "/api/v1/dossiers", "desk", json=body).status_code == 403
    created = portal.call("POST", "/api/v1/dossiers", "citizen", json=body)
    assert created.status_code == 201, created.get_json()
    code = created.get_json()["code"]
    assert created.headers["Location"].endswith(code)
    assert created.get_json()["status"] == {"code": 1, "name": "Mới đăng ký"}

    # Only the owner and the agency's officials see it; others get 404, not a hint that it exists.
    assert portal.call("GET", f"/api/v1/dossiers/{code}", "citizen2").status_code == 404
    assert portal.call("GET", f"/api/v1/dossiers/{code}", "desk_other").status_code == 404
    assert portal.call("GET", f"/api/v1/dossiers/{code}", "desk").status_code == 200

    _complete(portal, "citizen", _only_task(portal, "citizen", "information"), {})
    task = _only_task(portal, "citizen", "submit_online")
    detail = portal.call("GET", f"/api/v1/tasks/{task['id']}", "citizen").get_json()
    assert detail["form"]["id"] == "lltp_mau_03"
    bad = _complete(portal, "citizen", task, {"form_data": {**LLTP_FORM, "ngay_sinh": "17/05/1990"}}, 422)
    assert "form_data.ngay_sinh" in bad["errors"]
    assert (
        portal.call(
            "POST",
            f"/api/v1/tasks/{task['id']}/complete",
            "citizen2",
            json={"data": {"form_data": LLTP_FORM}},
        ).status_code
        == 404
    )
    _complete(portal, "citizen", task, {"form_data": LLTP_FORM})

    review = _only_task(portal, "desk", "review")
    assert portal.call("GET", "/api/v1/tasks", "desk_other").get_json()["items"] == []
    _complete(portal, "specialist", review, {"decision": "accept"}, 403)
    _complete(portal, "desk", review, {"decision": "accept"})
    _complete(portal, "desk", review, {"decision": "accept"}, 409)  # already done
    assert portal.call("GET", f"/api/v1/dossiers/{code}", "citizen").get_json()["status"]["code"] == 6

    # Only the bank's signed notification confirms a payment (tests/e2e pays at the sandbox bank): nobody
    # can send the message that stands for it, not even an integrator.
    message = {"name": "payment.confirmed", "correlation": {"dossier_code": code}, "data": {"paid": 200000}}
    assert portal.call("POST", "/api/v1/messages", "citizen", json=message).status_code == 403
    refused = portal.call("POST", "/api/v1/messages", "integrator", json=message)
    assert refused.status_code == 403 and "ipn" in refused.get_json()["detail"]
    assert portal.call("GET", f"/api/v1/dossiers/{code}", "citizen").get_json()["status"]["code"] == 6
    portal.engine.send_message("payment.confirmed", {"dossier_code": code}, {"paid": 200000})

    _complete(
        portal,
        "specialist",
        _only_task(portal, "specialist", "appraise"),
        {"appraisal_opinion": "Không có án tích", "draft_result": "Phiếu số 1"},
    )
    _complete(portal, "leader", _only_task(portal, "leader", "approve"), {"approval": "approve"})
    # The post reports the order it carries the result in; the dossier is returned once delivered.
    order = portal.call("GET", f"/api/v1/dossiers/{code}/postal-order", "citizen").get_json()
    events = f"/api/v1/postal-orders/{order['tracking_number']}/events"
    for status in ("collecting", "delivered"):
        assert portal.call("POST", events, "citizen", json={"status": status}).status_code == 403
        assert portal.call("POST", events, "integrator", json={"status": status}).status_code == 201

    dossier = portal.call("GET", f"/api/v1/dossiers/{code}", "citizen").get_json()
    assert dossier["status"] == {"code": 10, "name": "Đã trả kết quả"}
    assert dossier["outcome"] == "early"
    receipt = portal.call("GET", f"/api/v1/dossiers/{code}/documents/receipt", "citizen")
    assert receipt.status_code == 200 and receipt.data.startswith(b"%PDF")
    assert (
        portal.call("POST", f"/api/v1/dossiers/{code}/rating", "citizen", json={"score": 9}).status_code
        == 422
    )
    rated = portal.call("POST", f"/api/v1/dossiers/{code}/rating", "citizen", json={"score": 5})
    assert rated.status_code == 200 and rated.get_json()["rating"] == 5


def test_errors_are_problem_documents(portal: Portal):
    missing = portal.call("GET", "/api/v1/procedures/9.999999")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    bad = portal.call("POST", "/api/v1/dossiers", "citizen", json={"applicant": {}})
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) >= {"procedure_code", "applicant.name"}
    wrong = portal.call("POST", "/api/v1/dossiers", "citizen", data="x", content_type="text/plain")
    assert wrong.status_code in (415, 422)
    unauth = portal.call("GET", "/api/v1/tasks", headers={"Authorization": "Bearer nonsense"})
    assert unauth.status_code == 401 and unauth.headers["WWW-Authenticate"].startswith("Bearer")
    assert portal.call("GET", "/api/v1/definitions", "citizen").status_code == 403
    assert portal.call("GET", "/api/v1/definitions", "analyst").status_code == 200
    spec = portal.call("GET", "/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and "/api/v1/dossiers" in spec["paths"]


def test_idempotent_process_start(portal: Portal):
    headers = {"Idempotency-Key": "portal-req-0001"}
    body = {"data": {"note": "từ cổng quốc gia"}, "business_key": "EXT-1"}
    first = portal.call(
        "POST", "/api/v1/processes/dossier_l1/instances", "integrator", json=body, headers=headers
    )
    again = portal.call(
        "POST", "/api/v1/processes/dossier_l1/instances", "integrator", json=body, headers=headers
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    other = portal.call(
        "POST",
        "/api/v1/processes/dossier_l1/instances",
        "integrator",
        json={**body, "business_key": "EXT-2"},
        headers=headers,
    )
    assert other.status_code == 409
    assert (
        portal.call("POST", "/api/v1/processes/dossier_l1/instances", "citizen", json=body).status_code == 403
    )


def test_claims_and_stale_updates(portal: Portal):
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "desk"}
    code = portal.call("POST", "/api/v1/dossiers", "citizen", json=body).get_json()["code"]
    _complete(portal, "citizen", _only_task(portal, "citizen", "information"), {})
    task = _only_task(portal, "citizen", "submit_online")
    etag = portal.call("GET", f"/api/v1/tasks/{task['id']}", "citizen").headers["ETag"]
    stale = '"0"'
    response = portal.call(
        "POST",
        f"/api/v1/tasks/{task['id']}/complete",
        "citizen",
        json={"data": {"form_data": LLTP_FORM}},
        headers={"If-Match": stale},
    )
    assert response.status_code == 409
    response = portal.call(
        "POST",
        f"/api/v1/tasks/{task['id']}/complete",
        "citizen",
        json={"data": {"form_data": LLTP_FORM}},
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.get_json()

    review = _only_task(portal, "desk", "review")
    claimed = portal.call("POST", f"/api/v1/tasks/{review['id']}/claim", "desk")
    assert claimed.status_code == 200 and claimed.get_json()["claimed_by"] == "desk"
    assert _only_task(portal, "desk", "review")["claimed_by"] == "desk"
    assert portal.call("POST", f"/api/v1/tasks/{review['id']}/unclaim", "desk").status_code == 204
    assert portal.call("POST", f"/api/v1/tasks/{review['id']}/unclaim", "desk").status_code == 404
    portal.call("POST", f"/api/v1/tasks/{review['id']}/claim", "desk")
    assert portal.call("POST", f"/api/v1/tasks/{review['id']}/claim", "desk2").status_code == 409
    _complete(portal, "desk2", review, {"decision": "accept"}, 409)
    assert portal.call("POST", f"/api/v1/tasks/{review['id']}/claim?force=true", "leader").status_code == 403
    _complete(portal, "desk", review, {"decision": "accept"})
    assert portal.call("GET", f"/api/v1/dossiers/{code}", "desk").get_json()["status"]["code"] == 6


def test_submit_with_the_declaration_in_one_request(portal: Portal):
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "online"}
    bad = portal.call("POST", "/api/v1/dossiers", "citizen", json={**body, "form_data": {"ho_ten": "A"}})
    assert bad.status_code == 422 and "form_data.gioi_tinh" in bad.get_json()["errors"]
    assert portal.call("GET", "/api/v1/dossiers", "citizen").get_json()["page"]["total"] == 0
    created = portal.call("POST", "/api/v1/dossiers", "citizen", json={**body, "form_data": LLTP_FORM})
    assert created.status_code == 201, created.get_json()
    assert portal.call("GET", "/api/v1/tasks", "citizen").get_json()["items"] == []
    assert _only_task(portal, "desk", "review")["dossier_code"] == created.get_json()["code"]


def test_task_queue_filters(portal: Portal):
    body = {
        "procedure_code": JUDICIAL_RECORD,
        "applicant": APPLICANT,
        "delivery_method": "desk",
        "form_data": LLTP_FORM,
    }
    codes = [
        portal.call("POST", "/api/v1/dossiers", "citizen", json=body).get_json()["code"] for _ in range(3)
    ]
    queue = portal.call("GET", "/api/v1/tasks?per_page=2", "desk").get_json()
    assert queue["page"] == {"page": 1, "per_page": 2, "total": 3} and len(queue["items"]) == 2
    assert portal.call("GET", "/api/v1/tasks?procedure_code=2.000815", "desk").get_json()["items"] == []
    assert len(portal.call("GET", "/api/v1/tasks?status=1&lane=reception", "desk").get_json()["items"]) == 3
    assert portal.call("GET", "/api/v1/tasks?lane=leader", "desk").get_json()["items"] == []
    # Accept one: it gets a due date; it is not overdue now, it is once the clock passes it.
    _complete(portal, "desk", _only_task_of(portal, codes[0]), {"decision": "accept"})
    portal.engine.send_message("payment.confirmed", {"dossier_code": codes[0]}, {})  # the bank confirmed
    assert portal.call("GET", "/api/v1/tasks?overdue=true", "specialist").get_json()["items"] == []
    portal.clock.advance(days=30)
    portal.tokens.clear()  # the old tokens expired meanwhile
    overdue = portal.call("GET", "/api/v1/tasks?overdue=true", "specialist").get_json()["items"]
    assert [t["dossier_code"] for t in overdue] == [codes[0]]
    assert (
        portal.call("GET", "/api/v1/tasks?due_before=2000-01-01T00:00:00%2B00:00", "specialist").get_json()[
            "items"
        ]
        == []
    )


def _only_task_of(portal: Portal, code: str) -> dict:
    items = portal.call("GET", "/api/v1/tasks?per_page=50", "desk").get_json()["items"]
    return next(t for t in items if t["dossier_code"] == code)


def test_a_result_by_post_needs_an_address_and_nothing_is_created_without_it(portal: Portal):
    homeless = {key: value for key, value in APPLICANT.items() if key != "address"}
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": homeless, "delivery_method": "post"}
    refused = portal.call("POST", "/api/v1/dossiers", "citizen", json=body)
    assert refused.status_code == 422
    assert "applicant.address" in refused.get_json()["errors"]
    assert portal.call("GET", "/api/v1/dossiers", "citizen").get_json()["page"]["total"] == 0
    body["delivery_method"] = "online"
    assert portal.call("POST", "/api/v1/dossiers", "citizen", json=body).status_code == 201


def test_the_dossier_lists_only_the_documents_that_exist(portal: Portal):
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "online"}
    created = portal.call("POST", "/api/v1/dossiers", "citizen", json=body).get_json()
    kinds = [doc["kind"] for doc in created["available_documents"]]
    assert kinds == ["control_slip"]
    assert created["available_documents"][0]["title"].startswith("Phiếu kiểm soát quá trình")
    assert portal.call("GET", created["available_documents"][0]["href"], "citizen").status_code == 200
    _complete(portal, "citizen", _only_task(portal, "citizen", "information"), {})
    _complete(portal, "citizen", _only_task(portal, "citizen", "submit_online"), {"form_data": LLTP_FORM})
    _complete(portal, "desk", _only_task(portal, "desk", "review"), {"decision": "accept"})
    shown = portal.call("GET", f"/api/v1/dossiers/{created['code']}", "citizen").get_json()
    assert [doc["kind"] for doc in shown["available_documents"]] == ["receipt", "control_slip"]


def test_a_request_takes_one_pooled_connection_for_all_its_units(portal: Portal):
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "desk"}
    portal.call("POST", "/api/v1/dossiers", "citizen", json=body)
    _complete(portal, "citizen", _only_task(portal, "citizen", "information"), {})
    task = _only_task(portal, "citizen", "submit_online")
    portal.login("citizen")
    checkouts: list[object] = []

    def checked_out(dbapi_conn: object, _record: object, _proxy: object) -> None:
        checkouts.append(dbapi_conn)

    db = portal.engine.store.engine
    event.listen(db, "checkout", checked_out)
    try:
        # The caller's token, the task's context and the completion: three units of work, one checkout.
        _complete(portal, "citizen", task, {"form_data": LLTP_FORM})
        assert len(checkouts) == 1
        portal.call("GET", f"/api/v1/tasks/{task['id']}", "citizen")  # the next request: its own
        assert len(checkouts) == 2
    finally:
        event.remove(db, "checkout", checked_out)
