"""Deadline flags over HTTP: a dossier about to be late shows it owes an apology, in its track view, in the
dossier list and in the officials' task queue, which can be filtered by them.

The judicial-record dossier received (and paid) Monday 2/3/2026 09:00 is due Monday 16/3 17:00: due soon from
Friday 13/3 17:00 (the weekend does not count), overdue after its due date.
"""

from __future__ import annotations

from typing import Any

from dossiers import store
from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, LLTP_FORM, vn

JUDICIAL_RECORD = "2.000488"
FLAGS = ("due_soon", "overdue", "apology_required")


def _processing_dossier(portal: Portal) -> str:
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "desk"}
    code: str = portal.call(
        "POST", "/api/v1/dossiers", "citizen", json={**body, "form_data": LLTP_FORM}
    ).get_json()["code"]
    portal.dossiers.complete_task(_tasks(portal, "desk")[0]["id"], {"decision": "accept"}, actor="desk")
    portal.engine.send_message("payment.confirmed", {"dossier_code": code}, {})  # the bank confirmed
    return code


def _tasks(portal: Portal, user: str, query: str = "") -> list[dict[str, Any]]:
    response = portal.call("GET", f"/api/v1/tasks{query}", user)
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def _flags(item: dict[str, Any]) -> tuple[bool, ...]:
    return tuple(item[f] for f in FLAGS)


def _at(portal: Portal, moment: Any) -> None:
    portal.clock.current = moment
    portal.tokens.clear()  # tokens issued at an earlier time may have expired


def test_flags_in_track_list_and_queue(portal: Portal):
    code = _processing_dossier(portal)
    tracked = portal.call("GET", f"/api/v1/dossiers/{code}", "specialist").get_json()
    assert tracked["due_at"] == "2026-03-16T10:00:00+00:00"
    assert _flags(tracked) == (False, False, False)
    assert (tracked["due_soon_at"], tracked["overdue_at"]) == (None, None)
    assert tracked["status"] == {"code": 4, "name": "Đang xử lý"}  # existing fields unchanged

    assert portal.dossiers.mark_deadlines(now=vn(2026, 3, 13, 16, 59)) == {"due_soon": 0, "overdue": 0}
    assert portal.dossiers.mark_deadlines(now=vn(2026, 3, 13, 17)) == {"due_soon": 1, "overdue": 0}
    _at(portal, vn(2026, 3, 13, 17, 5))
    for user in ("specialist", "citizen"):
        tracked = portal.call("GET", f"/api/v1/dossiers/{code}", user).get_json()
        assert _flags(tracked) == (True, False, True)
        assert tracked["due_soon_at"] == "2026-03-13T10:00:00+00:00"
    [listed] = portal.call("GET", "/api/v1/dossiers", "leader").get_json()["items"]
    assert listed["code"] == code and _flags(listed) == (True, False, True)
    [task] = _tasks(portal, "specialist")
    assert task["element_id"] == "appraise" and _flags(task) == (True, False, True)
    detail = portal.call("GET", f"/api/v1/tasks/{task['id']}", "specialist").get_json()
    assert _flags(detail) == (True, False, True)

    assert portal.dossiers.mark_deadlines(now=vn(2026, 3, 16, 17, 1)) == {"due_soon": 0, "overdue": 1}
    _at(portal, vn(2026, 3, 16, 17, 2))
    tracked = portal.call("GET", f"/api/v1/dossiers/{code}", "specialist").get_json()
    assert _flags(tracked) == (False, True, True)
    [task] = _tasks(portal, "specialist")
    assert _flags(task) == (False, True, True)


def test_queue_filters_by_deadline(portal: Portal):
    late, soon, calm = (_processing_dossier(portal) for _ in range(3))
    with portal.engine.store.unit_of_work() as uow:
        store.update_dossier(
            uow.conn, late, {"due_soon_at": vn(2026, 3, 2, 10), "overdue_at": vn(2026, 3, 2, 11)}
        )
        store.update_dossier(uow.conn, soon, {"due_soon_at": vn(2026, 3, 2, 10)})

    def codes(query: str) -> list[str]:
        return [t["dossier_code"] for t in _tasks(portal, "specialist", query)]

    assert codes("?deadline=due_soon") == [soon]
    assert codes("?deadline=overdue") == [late]
    assert sorted(codes("?deadline=apology_required")) == sorted([late, soon])
    assert sorted(codes("")) == sorted([late, soon, calm])
    assert codes("?deadline=overdue&procedure_code=2.000815") == []
    bad = portal.call("GET", "/api/v1/tasks?deadline=someday", "specialist")
    assert bad.status_code == 422 and "deadline" in str(bad.get_json()["errors"])

    portal.dossiers.apologise(soon, "Cần xác minh thêm", vn(2026, 3, 20, 17), actor="leader")
    assert sorted(codes("?deadline=apology_required")) == [late]


def test_an_official_issues_the_apology_once_and_the_flag_clears(portal: Portal):
    code = _processing_dossier(portal)
    assert portal.dossiers.mark_deadlines(now=vn(2026, 3, 13, 17)) == {"due_soon": 1, "overdue": 0}
    _at(portal, vn(2026, 3, 13, 17, 5))
    body = {"reason": "Chờ xác minh của cơ quan công an", "new_due_at": "2026-03-20T17:00:00+07:00"}
    path = f"/api/v1/dossiers/{code}/apology"
    # Applicants, the reception desk and officials of another agency may not; unseen dossiers are 404.
    assert portal.call("POST", path, "citizen", json=body).status_code == 403
    assert portal.call("POST", path, "desk", json=body).status_code == 403
    assert portal.call("POST", path, "citizen2", json=body).status_code == 404
    refused = portal.call("POST", path, "specialist", json={**body, "new_due_at": "2026-03-20T17:00:00"})
    assert refused.status_code == 422 and "new_due_at" in refused.get_json()["errors"]
    earlier = portal.call(
        "POST", path, "specialist", json={**body, "new_due_at": "2026-03-10T17:00:00+07:00"}
    )
    assert earlier.status_code == 422 and "new_due_at" in earlier.get_json()["errors"]
    assert _flags(portal.call("GET", f"/api/v1/dossiers/{code}", "specialist").get_json()) == (
        True,
        False,
        True,
    )

    done = portal.call("POST", path, "leader", json=body)
    assert done.status_code == 200, done.get_json()
    tracked = done.get_json()
    assert tracked["due_at"] == "2026-03-20T10:00:00+00:00"
    assert _flags(tracked) == (False, False, False)
    assert portal.call("POST", path, "leader", json=body).status_code == 409
    pdf = portal.call("GET", f"/api/v1/dossiers/{code}/documents/apology", "citizen")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
