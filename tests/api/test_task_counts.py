"""GET /api/v1/tasks/counts: the officials' inbox counts, per lane and in all, with how many tasks are
overdue and due soon, over the caller's own queue (the same restriction as GET /api/v1/tasks), in one
grouped query."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from dossiers import store
from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, LLTP_FORM, vn

JUDICIAL_RECORD = "2.000488"
EMPTY = {"total": 0, "overdue": 0, "due_soon": 0}


def _submitted(portal: Portal) -> str:
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "form_data": LLTP_FORM}
    created = portal.call("POST", "/api/v1/dossiers", "citizen", json={**body, "delivery_method": "desk"})
    assert created.status_code == 201, created.get_json()
    return str(created.get_json()["code"])


def _in_processing(portal: Portal) -> str:
    """A dossier the desk accepted and the applicant paid for: the specialist's appraisal waits."""
    code = _submitted(portal)
    [review] = [t for t in portal.dossiers.dossier(code)["tasks"] if t["element_id"] == "review"]
    portal.dossiers.complete_task(review["id"], {"decision": "accept"}, actor="desk")
    portal.engine.send_message("payment.confirmed", {"dossier_code": code}, {})
    return code


def _counts(portal: Portal, user: str, query: str = "") -> dict[str, Any]:
    response = portal.call("GET", f"/api/v1/tasks/counts{query}", user)
    assert response.status_code == 200, response.get_json()
    found: dict[str, Any] = response.get_json()
    return found


def _lanes(counts: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {row["lane"]: {k: row[k] for k in ("total", "overdue", "due_soon")} for row in counts["lanes"]}


@contextmanager
def _queries(portal: Portal) -> Iterator[list[str]]:
    """Collect the SQL statements that read the task queue while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "ready_tasks" in statement:
            seen.append(statement)

    db = portal.engine.store.engine
    event.listen(db, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db, "before_cursor_execute", record)


def test_counts_per_lane_with_deadline_flags_in_one_query(portal: Portal):
    late, soon, calm = (_in_processing(portal) for _ in range(3))
    waiting = [_submitted(portal) for _ in range(2)]
    with portal.engine.store.unit_of_work() as uow:
        store.update_dossier(
            uow.conn, late, {"due_soon_at": vn(2026, 3, 2, 10), "overdue_at": vn(2026, 3, 2, 11)}
        )
        store.update_dossier(uow.conn, soon, {"due_soon_at": vn(2026, 3, 2, 10)})
        store.update_dossier(uow.conn, waiting[0], {"due_soon_at": vn(2026, 3, 2, 10)})

    portal.login("admin")
    with _queries(portal) as seen:
        everything = _counts(portal, "admin")
    assert len(seen) == 1 and "GROUP BY" in seen[0].upper()
    assert _lanes(everything) == {
        "reception": {"total": 2, "overdue": 0, "due_soon": 1},
        "specialist": {"total": 3, "overdue": 1, "due_soon": 1},
        "leader": EMPTY,
    }
    assert (everything["total"], everything["overdue"], everything["due_soon"]) == (5, 1, 2)

    # Each official counts only the lanes of their roles, in their agency (as GET /tasks lists them).
    desk = _counts(portal, "desk")
    assert _lanes(desk) == {"reception": {"total": 2, "overdue": 0, "due_soon": 1}}
    assert (desk["total"], desk["overdue"], desk["due_soon"]) == (2, 0, 1)
    listed = portal.call("GET", "/api/v1/tasks", "desk").get_json()["page"]["total"]
    assert listed == desk["total"]
    specialist = _counts(portal, "specialist")
    assert _lanes(specialist) == {"specialist": {"total": 3, "overdue": 1, "due_soon": 1}}
    overdue = portal.call("GET", "/api/v1/tasks?deadline=overdue", "specialist").get_json()
    assert [t["dossier_code"] for t in overdue["items"]] == [late] == [late] * specialist["overdue"]
    assert _lanes(_counts(portal, "leader")) == {"leader": EMPTY}
    assert _lanes(_counts(portal, "desk_other")) == {"reception": EMPTY}  # another agency
    assert calm not in {t["dossier_code"] for t in overdue["items"]}

    # By procedure.
    assert _counts(portal, "specialist", "?procedure_code=2.000815")["total"] == 0
    assert _counts(portal, "specialist", f"?procedure_code={JUDICIAL_RECORD}")["total"] == 3


def test_who_has_counts(portal: Portal):
    _submitted(portal)
    assert _lanes(_counts(portal, "citizen")) == {"applicant": EMPTY}  # submitted with its declaration
    assert portal.call("GET", "/api/v1/tasks/counts", "analyst").status_code == 403
    assert portal.call("GET", "/api/v1/tasks/counts").status_code == 401
    bad = portal.call("GET", "/api/v1/tasks/counts?procedure_code=" + "x" * 41, "desk")
    assert bad.status_code == 422 and "procedure_code" in bad.get_json()["errors"]


def test_counts_follow_the_dossier_flags_not_the_clock(portal: Portal):
    """A task counts as overdue once the deadline job marked its dossier (as the queue's rows show), and no
    longer once the dossier is finished."""
    code = _in_processing(portal)
    assert _counts(portal, "specialist")["overdue"] == 0
    portal.dossiers.mark_deadlines(now=vn(2026, 3, 16, 17, 1))
    assert _counts(portal, "specialist")["overdue"] == 1
    [task] = portal.call("GET", "/api/v1/tasks", "specialist").get_json()["items"]
    assert task["dossier_code"] == code and task["overdue"] is True
    assert task["dossier_status_name"] == "Đang xử lý"
