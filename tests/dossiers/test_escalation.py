"""A dossier left at the reception desk for 4 working hours is escalated to a leader (frag_reception.bpmn).

The boundary timer on the desk's review is non-interrupting and counts working hours by the calendar; the
leader's task changes neither the dossier's status nor whom the dossier is handed to.  On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import io

from pypdf import PdfReader

from dossiers.status import Status
from engine.bpmn_levels import check_level
from tests.dossiers.conftest import COPY_FORM, VN, WORKFLOWS, vn

BPMN = WORKFLOWS / "bpmn"
CERTIFIED_COPY = "2.000815"  # level 3, same day


def _at_the_desk(desk) -> str:
    """Submit a level-3 dossier online; its review task is created Monday 2/3/2026 09:00."""
    code = desk.submit(CERTIFIED_COPY)["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": COPY_FORM}, actor="citizen-1")
    desk.task(code, "review")
    return code


def _tasks(desk, code: str) -> list[tuple[str, str]]:
    return sorted((t["element_id"], t["lane"]) for t in desk.service.dossier(code)["tasks"])


def _timers(desk, code: str) -> list[tuple[str, object]]:
    view = desk.service.engine.show(desk.service.dossier(code)["instance_id"])
    return [(t["element_id"], t["due_at"].astimezone(VN)) for t in view["timers"]]


def _leader_queue(desk) -> list[dict]:
    items, _ = desk.service.task_queue({"lanes": ["leader"]})
    return items


def _complete(desk, code: str, element_id: str, data: dict, actor: str) -> None:
    [task] = [t for t in desk.service.dossier(code)["tasks"] if t["element_id"] == element_id]
    desk.service.complete_task(task["id"], data, actor=actor)


def _fire(desk, *moment: int) -> list[str]:
    desk.clock.current = vn(*moment)
    fired = desk.service.engine.fire_due_timers(now=vn(*moment))
    return [f"{f['element_id']}: {f['outcome']}" for f in fired]


def test_an_unhandled_dossier_is_escalated_to_a_leader_after_4_working_hours(desk):
    code = _at_the_desk(desk)
    # 09:00-11:30 is 2.5 working hours, the lunch break does not count, 13:00 + 1.5 h = 14:30.
    assert _timers(desk, code) == [("review_overdue", vn(2026, 3, 2, 14, 30))]
    assert _fire(desk, 2026, 3, 2, 14, 29) == []
    assert _leader_queue(desk) == []

    assert _fire(desk, 2026, 3, 2, 14, 30) == ["review_overdue: fired"]
    [urge] = _leader_queue(desk)
    assert (urge["element_id"], urge["dossier_code"]) == ("urge_reception", code)
    assert urge["title"] == "Đôn đốc tiếp nhận hồ sơ chậm"
    # Non-interrupting: the desk's review is still open, and the dossier is still new (status 1).
    assert _tasks(desk, code) == [("review", "reception"), ("urge_reception", "leader")]
    assert desk.status(code) == Status.NEW and _timers(desk, code) == []

    note = "Đề nghị bộ phận một cửa kiểm tra, tiếp nhận ngay trong ngày"
    desk.service.complete_task(urge["id"], {"escalation_note": note}, actor="leader")
    assert _tasks(desk, code) == [("review", "reception")] and _leader_queue(desk) == []
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.NEW
    last = dossier["handovers"][-1]
    assert (last["element_id"], last["from_role"], last["to_role"], last["note"]) == (
        "urge_reception",
        "leader",
        "reception",
        note,
    )

    desk.accept_and_process(code)
    assert desk.status(code) == Status.PROCESSED


def test_a_dossier_handled_in_time_is_never_escalated(desk):
    code = _at_the_desk(desk)
    desk.clock.current = vn(2026, 3, 2, 11, 0)
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    assert desk.status(code) == Status.PROCESSING
    # The timer went with the desk's task.
    assert _timers(desk, code) == []
    assert _fire(desk, 2026, 3, 3, 9, 0) == []
    assert _leader_queue(desk) == []
    assert _tasks(desk, code) == [("appraise", "specialist")]


def test_accepting_an_escalated_dossier_withdraws_the_leaders_reminder(desk):
    code = _at_the_desk(desk)
    assert _fire(desk, 2026, 3, 2, 15, 0) == ["review_overdue: fired"]
    assert len(_leader_queue(desk)) == 1
    _complete(desk, code, "review", {"decision": "accept"}, actor="desk.officer")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.PROCESSING and _leader_queue(desk) == []
    assert _tasks(desk, code) == [("appraise", "specialist")]
    assert (dossier["handovers"][-1]["from_role"], dossier["handovers"][-1]["to_role"]) == (
        "reception",
        "specialist",
    )


def test_the_leaders_reminder_is_not_a_handover_of_the_dossier(desk):
    code = _at_the_desk(desk)
    assert _fire(desk, 2026, 3, 2, 15, 0) == ["review_overdue: fired"]
    items = ["Bản sao thẻ căn cước"]
    _complete(desk, code, "review", {"decision": "supplement", "supplement_items": items}, "desk.officer")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.SUPPLEMENT_REQUESTED
    # The dossier goes to the applicant; the leader's open reminder does not make the leader a recipient.
    assert (dossier["handovers"][-1]["from_role"], dossier["handovers"][-1]["to_role"]) == (
        "reception",
        "applicant",
    )
    assert _tasks(desk, code) == [("supplement", "applicant"), ("urge_reception", "leader")]
    slip = PdfReader(io.BytesIO(desk.service.document(code, "control_slip")))
    text = " ".join(page.extract_text() for page in slip.pages)
    assert "applicant" not in text and "leader" not in text
    # The applicant answers on Tuesday 15:00: the new round of review gets a timer of its own.
    desk.clock.current = vn(2026, 3, 3, 15, 0)
    _complete(desk, code, "supplement", {"supplement_note": "Đã bổ sung"}, "citizen-1")
    assert desk.status(code) == Status.NEW
    assert _timers(desk, code) == [("review_overdue", vn(2026, 3, 4, 9, 30))]


def _level_3_with_reception(reception: bytes) -> list[tuple[str, bytes]]:
    documents = [("dossier_l3.bpmn", (BPMN / "dossier_l3.bpmn").read_bytes())]
    for path in sorted((BPMN / "fragments").glob("*.bpmn")):
        xml = reception if path.stem == "frag_reception" else path.read_bytes()
        documents.append((f"fragments/{path.name}", xml))
    return documents


def test_the_level_linter_checks_the_shape_of_the_escalation():
    reception = (BPMN / "fragments" / "frag_reception.bpmn").read_bytes()
    assert check_level(_level_3_with_reception(reception), 3) == []
    broken = reception.replace(b'cancelActivity="false"', b'cancelActivity="true"').replace(
        b'<spiffworkflow:property name="role" value="escalation" />',
        b'<spiffworkflow:property name="role" value="escalation" />'
        b'<spiffworkflow:property name="dossier_status" value="4" />',
    )
    problems = check_level(_level_3_with_reception(broken), 3)
    assert [(p.element_id, p.message.split(";")[0]) for p in problems] == [
        (
            "review_overdue",
            "level 3: 'review_overdue' has role 'review_deadline' but interrupts the task "
            "(cancelActivity is not false)",
        ),
        ("urge_reception", "level 3: 'urge_reception' has role 'escalation' but sets dossier_status 4"),
    ]
