"""Result delivery over HTTP (api/results.py): signed download links, the post's reports, who may do what."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest
from pypdf import PdfReader

from api import create_app
from motcua.settings import Settings
from tests.api.conftest import LINK_SECRET, PUBLIC_URL, Portal
from tests.dossiers.conftest import APPLICANT, LLTP_FORM

JUDICIAL_RECORD = "2.000488"
DRAFT = "Phiếu lý lịch tư pháp số 1: Không có án tích"


def _task(portal: Portal, user: str, code: str) -> dict[str, Any]:
    items = portal.call("GET", "/api/v1/tasks?per_page=100", user).get_json()["items"]
    [task] = [t for t in items if t["dossier_code"] == code]
    return task


def _complete(portal: Portal, user: str, code: str, data: dict[str, Any], status: int = 200) -> Any:
    task = _task(portal, user, code)
    response = portal.call("POST", f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _approved(portal: Portal, delivery_method: str) -> str:
    """A level-4 dossier submitted, accepted, paid, appraised and approved, all over HTTP."""
    body = {
        "procedure_code": JUDICIAL_RECORD,
        "applicant": APPLICANT,
        "delivery_method": delivery_method,
        "form_data": LLTP_FORM,
    }
    created = portal.call("POST", "/api/v1/dossiers", "citizen", json=body)
    assert created.status_code == 201, created.get_json()
    code: str = created.get_json()["code"]
    _complete(portal, "desk", code, {"decision": "accept"})
    portal.engine.send_message("payment.confirmed", {"dossier_code": code}, {})  # the bank confirmed
    _complete(portal, "specialist", code, {"appraisal_opinion": "Đủ điều kiện", "draft_result": DRAFT})
    _complete(portal, "leader", code, {"approval": "approve"})
    return code


def _dossier(portal: Portal, code: str, user: str = "citizen") -> dict[str, Any]:
    response = portal.call("GET", f"/api/v1/dossiers/{code}", user)
    assert response.status_code == 200, response.get_json()
    found: dict[str, Any] = response.get_json()
    return found


def _local(url: str) -> str:
    """The path and query of a link, for the test client."""
    assert url.startswith(PUBLIC_URL + "/api/v1/results/")
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_the_applicant_downloads_the_result_through_a_signed_link(portal: Portal):
    code = _approved(portal, "online")
    dossier = _dossier(portal, code)
    assert dossier["status"]["code"] == 9
    result = dossier["result"]
    assert result["collected_at"] is None and result["delivery_method"] == "online"
    path = f"/api/v1/dossiers/{code}/result-link"

    assert portal.call("POST", path).status_code == 401
    assert portal.call("POST", path, "citizen2").status_code == 404  # not theirs: not even there
    assert portal.call("POST", path, "desk_other").status_code == 404
    for official in ("desk", "leader"):  # they see the dossier, but the result link is the applicant's
        refused = portal.call("POST", path, official)
        assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    issued = portal.call("POST", path, "citizen")
    assert issued.status_code == 201, issued.get_json()
    link = _local(issued.get_json()["url"])
    assert issued.get_json()["expires_at"].startswith("2026-03-02T02:15:00")  # 15 minutes, in UTC

    # Someone else logged in may not use it, a changed link is refused, and neither hands anything over.
    assert portal.call("GET", link, "citizen2").status_code == 403
    assert portal.call("GET", link, "desk").status_code == 403
    assert portal.call("GET", link.replace("u=citizen", "u=citizen2")).status_code == 403
    assert portal.call("GET", link[:-1] + ("0" if link[-1] != "0" else "1")).status_code == 403
    assert portal.call("GET", f"/api/v1/results/{code}").status_code == 403
    assert _dossier(portal, code)["status"]["code"] == 9

    downloaded = portal.call("GET", link)  # the link alone is enough: no login needed
    assert downloaded.status_code == 200 and downloaded.mimetype == "application/pdf"
    text = " ".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(downloaded.data)).pages).split())
    assert DRAFT in text and "Người dùng leader" in text  # the approving leader, by name
    digest = hashlib.sha256(downloaded.data).hexdigest()
    assert downloaded.headers["X-Content-SHA256"] == digest == result["sha256"]
    assert downloaded.headers["ETag"] == f'"{digest}"'
    assert downloaded.headers["Content-Disposition"] == f'attachment; filename="ket-qua-{code}.pdf"'
    returned = _dossier(portal, code)
    assert returned["status"] == {"code": 10, "name": "Đã trả kết quả"}
    assert returned["result"]["collected_via"] == "online" and returned["result"]["collected_at"]

    portal.clock.advance(minutes=10)  # still valid: the same document, nothing changes
    again = portal.call("GET", link, "citizen")
    assert again.status_code == 200 and again.data == downloaded.data
    assert _dossier(portal, code)["handovers"] == returned["handovers"]
    portal.clock.advance(minutes=6)
    portal.tokens.clear()
    expired = portal.call("GET", link)
    assert expired.status_code == 403 and "expired" in expired.get_json()["detail"]


def test_links_are_refused_without_a_secret_and_before_the_result(portal: Portal):
    code = _approved(portal, "online")
    submitted = portal.call(
        "POST",
        "/api/v1/dossiers",
        "citizen",
        json={"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "online"},
    ).get_json()["code"]
    assert portal.call("POST", f"/api/v1/dossiers/{submitted}/result-link", "citizen").status_code == 409
    by_post = _approved(portal, "post")
    assert portal.call("POST", f"/api/v1/dossiers/{by_post}/result-link", "citizen").status_code == 409
    link = _local(portal.call("POST", f"/api/v1/dossiers/{code}/result-link", "citizen").get_json()["url"])

    settings = replace(Settings.from_env(), link_secret=None, public_url=PUBLIC_URL)
    unsigned = create_app(
        settings, engine=portal.engine, dossiers=portal.dossiers, accounts=portal.accounts, TESTING=True
    ).test_client()
    headers = {"Authorization": f"Bearer {portal.login('citizen')}"}
    refused = unsigned.post(f"/api/v1/dossiers/{code}/result-link", headers=headers)
    assert refused.status_code == 503 and "MOTCUA_LINK_SECRET" in refused.get_json()["detail"]
    assert unsigned.get(link).status_code == 503
    assert LINK_SECRET not in refused.get_data(as_text=True)
    assert _dossier(portal, code)["status"]["code"] == 9


def _order(portal: Portal, code: str, user: str = "citizen") -> Any:
    return portal.call("GET", f"/api/v1/dossiers/{code}/postal-order", user)


def test_the_post_reports_the_order_until_delivery(portal: Portal):
    code = _approved(portal, "post")
    assert _order(portal, code, None).status_code == 401
    assert _order(portal, code, "citizen2").status_code == 404
    assert _order(portal, code, "desk_other").status_code == 404
    for user in ("citizen", "desk", "leader", "admin"):
        assert _order(portal, code, user).status_code == 200
    order = _order(portal, code).get_json()
    assert order["status"] == "registered" and order["postage"] == 30000
    assert (order["recipient"], order["address"], order["phone"]) == (
        APPLICANT["name"],
        APPLICANT["address"],
        APPLICANT["phone"],
    )
    events = f"/api/v1/postal-orders/{order['tracking_number']}/events"

    for user in (None, "citizen", "desk", "leader"):
        assert portal.call("POST", events, user, json={"status": "collecting"}).status_code in (401, 403)
    unknown = portal.call(
        "POST", "/api/v1/postal-orders/EB999999995VN/events", "integrator", json={"status": "collecting"}
    )
    assert unknown.status_code == 404
    assert portal.call("POST", events, "integrator", json={"status": "lost"}).status_code == 422
    skipped = portal.call("POST", events, "integrator", json={"status": "delivered"})
    assert skipped.status_code == 409 and skipped.mimetype == "application/problem+json"

    early = {"status": "collecting", "at": "2026-03-02T08:30:00+07:00"}  # before the order existed
    assert portal.call("POST", events, "integrator", json=early).status_code == 422
    portal.clock.advance(hours=1)
    key, _ = portal.accounts.create_api_key("integrator", name="VNPost", scopes=["messages:send"])
    collecting = portal.call(
        "POST",
        events,
        json={"status": "collecting", "note": "Bưu tá đã nhận", "at": "2026-03-02T09:30:00+07:00"},
        headers={"X-API-Key": key},
    )
    assert collecting.status_code == 201, collecting.get_json()
    assert collecting.get_json()["status"] == "collecting"
    assert _dossier(portal, code)["status"]["code"] == 9
    delivered = portal.call("POST", events, "integrator", json={"status": "delivered"})
    assert delivered.status_code == 201, delivered.get_json()
    assert [(e["status"], e["actor"]) for e in delivered.get_json()["events"]] == [
        ("registered", "leader"),
        ("collecting", "integrator"),
        ("delivered", "integrator"),
    ]
    dossier = _dossier(portal, code)
    assert dossier["status"]["code"] == 10 and dossier["result"]["collected_via"] == "post"
    assert portal.call("POST", events, "integrator", json={"status": "cancelled"}).status_code == 409


@pytest.mark.parametrize("after", ["registered", "collecting"])
def test_a_cancelled_order_is_handed_over_at_the_desk(portal: Portal, after: str):
    code = _approved(portal, "post")
    events = f"/api/v1/postal-orders/{_order(portal, code).get_json()['tracking_number']}/events"
    if after == "collecting":
        assert portal.call("POST", events, "integrator", json={"status": "collecting"}).status_code == 201
    cancelled = portal.call("POST", events, "integrator", json={"status": "cancelled", "note": "Sai địa chỉ"})
    assert cancelled.status_code == 201 and cancelled.get_json()["status"] == "cancelled"
    assert _dossier(portal, code)["status"]["code"] == 9
    assert _task(portal, "desk", code)["element_id"] == "hand_over_result"
    missing = _complete(portal, "desk", code, {"handed_over_to": "Nguyễn Thị Hương"}, 422)
    assert "receiver_id_number" in missing["errors"]
    _complete(
        portal, "desk", code, {"handed_over_to": "Nguyễn Thị Hương", "receiver_id_number": "001190012345"}
    )
    dossier = _dossier(portal, code)
    assert dossier["status"]["code"] == 10 and dossier["result"]["collected_via"] == "desk"
    assert dossier["handovers"][-1]["note"].startswith("Người nhận kết quả: Nguyễn Thị Hương")
