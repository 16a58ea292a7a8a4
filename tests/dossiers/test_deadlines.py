"""The deadline job: dossiers about to be late (the apology path starts) and late ones, each marked once.

A 3-working-day procedure received Monday 2/3/2026 09:00 is due Thursday 5/3 17:00; with the default window
of 8 working hours (one working day) it is due soon from Wednesday 4/3 17:00 and overdue after Thursday 17:00.
"""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from dossiers import deadlines, store, webhooks
from dossiers.calendar import WorkingCalendar
from dossiers.status import Status
from dossiers.tables import webhook_deliveries
from engine.tables import audit
from tests.dossiers.conftest import LLTP_FORM, PARENT_FORM, vn

PARENT_CHILD = "1.001022"  # level 2, 3 working days
JUDICIAL_RECORD = "2.000488"  # level 4, 10 working days, pays right after receipt (the clock pauses)
MARKS = ("due_soon_at", "overdue_at")


def received(desk, at) -> str:
    """Open a level-2 dossier and have the desk receive it at ``at``; return its code."""
    code = desk.submit(PARENT_CHILD, channel="in_person")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "download_forms", {"form_data": PARENT_FORM}, actor="citizen-1")
    desk.do(code, "record_paper_submission", {}, actor="desk.officer")
    desk.clock.current = at
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    return code


def flags(desk, code: str) -> tuple[bool, bool, bool]:
    dossier = desk.service.dossier(code)
    return dossier["due_soon"], dossier["overdue"], dossier["apology_required"]


def marked(desk, now) -> dict[str, int]:
    return desk.service.mark_deadlines(now=now)


def history(desk, code: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The deadline entries of the dossier's audit trail: (action, actor, details)."""
    instance_id = desk.service.dossier(code)["instance_id"]
    with desk.service.engine.store.unit_of_work(write=False) as uow:
        trail = uow.audit_of(instance_id)
    return [(h.action, h.actor, json.loads(h.details)) for h in trail if h.action.startswith("dossier_")]


def deliveries(desk, event: str, code: str | None = None) -> int:
    d = webhook_deliveries.c
    query = select(func.count()).where(d.event == event)
    if code is not None:
        query = query.where(d.dossier_code == code)
    with desk.service.engine.store.unit_of_work(write=False) as uow:
        return int(uow.conn.execute(query).scalar_one())


def subscribe(desk) -> int:
    return webhooks.create_webhook(
        desk.service.engine.store,
        owner="integrator",
        url="https://example.vn/hook",
        events=["*"],
        now=desk.clock.now(),
    )["id"]


# -- the window -------------------------------------------------------------------------------------
def test_the_window_counts_working_hours_only():
    calendar = WorkingCalendar()
    # Monday 09:00 + 8 working hours (07:30-11:30, 13:00-17:00) = Tuesday 09:00.
    assert deadlines.due_soon_limit(calendar, vn(2026, 3, 2, 9), 8) == vn(2026, 3, 3, 9)
    # From Friday 17:00 the next 8 working hours are Monday's: the weekend does not count, and a due date
    # in the evening break after Monday 17:00 leaves the same 8 hours.
    assert deadlines.due_soon_limit(calendar, vn(2026, 3, 6, 17), 8) == vn(2026, 3, 10, 7, 30)
    # 30/4 and 1/5/2026 (Thursday, Friday) are holidays.
    assert deadlines.due_soon_limit(calendar, vn(2026, 4, 29, 9), 8) == vn(2026, 5, 4, 9)


def test_cleared_marks_keep_what_the_new_date_still_deserves():
    calendar, now = WorkingCalendar(), vn(2026, 3, 5, 18)  # Thursday evening
    assert deadlines.cleared_marks(calendar, now, vn(2026, 3, 9, 17)) == dict.fromkeys(MARKS)
    assert deadlines.cleared_marks(calendar, now, vn(2026, 3, 6, 17)) == {"overdue_at": None}
    assert deadlines.cleared_marks(calendar, now, vn(2026, 3, 5, 17)) == {}


# -- marking ----------------------------------------------------------------------------------------
def test_a_received_dossier_is_not_marked_early(desk):
    code = received(desk, vn(2026, 3, 2, 9))
    assert desk.service.dossier(code)["due_at"] == vn(2026, 3, 5, 17)
    for now in (vn(2026, 3, 2, 9), vn(2026, 3, 3, 17), vn(2026, 3, 4, 16, 59, 59)):
        assert marked(desk, now) == {"due_soon": 0, "overdue": 0}
    dossier = desk.service.dossier(code)
    assert (dossier["due_soon_at"], dossier["overdue_at"]) == (None, None)
    assert flags(desk, code) == (False, False, False)


def test_due_soon_exactly_one_working_day_before_then_overdue_after_the_due_date(desk):
    code = received(desk, vn(2026, 3, 2, 9))
    assert marked(desk, vn(2026, 3, 4, 16, 59, 59)) == {"due_soon": 0, "overdue": 0}  # 8 h 1 s left
    assert marked(desk, vn(2026, 3, 4, 17)) == {"due_soon": 1, "overdue": 0}  # 8 h left
    assert desk.service.dossier(code)["due_soon_at"] == vn(2026, 3, 4, 17)
    assert flags(desk, code) == (True, False, True)
    assert marked(desk, vn(2026, 3, 5, 17)) == {"due_soon": 0, "overdue": 0}  # due now: not late yet
    assert marked(desk, vn(2026, 3, 5, 17, 0, 1)) == {"due_soon": 0, "overdue": 1}
    dossier = desk.service.dossier(code)
    assert (dossier["due_soon_at"], dossier["overdue_at"]) == (vn(2026, 3, 4, 17), vn(2026, 3, 5, 17, 0, 1))
    assert flags(desk, code) == (False, True, True)


def test_the_weekend_does_not_count(desk):
    # Received Wednesday 4/3: Thursday, Friday, Monday -> due Monday 9/3 17:00, due soon from Friday 17:00.
    code = received(desk, vn(2026, 3, 4, 10))
    assert desk.service.dossier(code)["due_at"] == vn(2026, 3, 9, 17)
    assert marked(desk, vn(2026, 3, 6, 16, 59)) == {"due_soon": 0, "overdue": 0}
    assert marked(desk, vn(2026, 3, 6, 17)) == {"due_soon": 1, "overdue": 0}


def test_a_day_off_declared_in_the_calendar_table_counts(desk):
    code = received(desk, vn(2026, 3, 2, 9))
    # Wednesday 4/3 declared a day off after receipt: only Thursday is left from Tuesday 17:00.
    desk.service.set_calendar_day(
        date(2026, 3, 4), working=False, note="Nghỉ bù theo thông báo", actor="admin"
    )
    assert marked(desk, vn(2026, 3, 3, 16, 59)) == {"due_soon": 0, "overdue": 0}
    assert marked(desk, vn(2026, 3, 3, 17)) == {"due_soon": 1, "overdue": 0}
    assert desk.service.dossier(code)["due_soon"] is True


def test_marked_once_with_one_history_entry_and_one_webhook_each(desk):
    subscribe(desk)
    code = received(desk, vn(2026, 3, 2, 9))
    late = vn(2026, 3, 6, 9)
    # The job was down until after the due date: the dossier is found late, never "about to be late".
    assert marked(desk, late) == {"due_soon": 0, "overdue": 1}
    assert marked(desk, late) == {"due_soon": 0, "overdue": 0}
    assert marked(desk, late + timedelta(days=1)) == {"due_soon": 0, "overdue": 0}
    assert history(desk, code) == [
        ("dossier_overdue", "scheduler", {"dossier_code": code, "due_at": "2026-03-05T10:00:00+00:00"})
    ]
    assert (deliveries(desk, webhooks.OVERDUE, code), deliveries(desk, webhooks.DUE_SOON)) == (1, 0)


def test_due_soon_webhook_and_history(desk):
    webhook_id = subscribe(desk)
    code = received(desk, vn(2026, 3, 2, 9))
    for _ in range(2):
        marked(desk, vn(2026, 3, 5, 9))  # Thursday 09:00: 6.5 working hours left
    [(action, actor, details)] = history(desk, code)
    assert (action, actor, details["working_hours_left"]) == ("dossier_due_soon", "scheduler", 6.5)
    assert deliveries(desk, webhooks.DUE_SOON, code) == 1
    sent = webhooks.deliveries_of(desk.service.engine.store, webhook_id, None)
    [delivery] = [d for d in sent if d["event"] == webhooks.DUE_SOON]
    assert delivery["payload"] == {
        "code": code,
        "procedure_code": PARENT_CHILD,
        "status": {"code": 4, "name": "Đang xử lý"},
        "due_at": "2026-03-05T10:00:00+00:00",
        "at": "2026-03-05T02:00:00+00:00",
        "working_hours_left": 6.5,
    }


def test_a_paused_dossier_is_not_running_late(desk):
    code = desk.submit(JUDICIAL_RECORD, delivery_method="desk")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": LLTP_FORM}, actor="citizen-1")
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.FINANCIAL_OBLIGATION and dossier["due_at"] == vn(2026, 3, 16, 17)
    # Waiting for the applicant to pay past the stored due date: the clock stands still, nothing is late.
    assert marked(desk, vn(2026, 3, 17, 9)) == {"due_soon": 0, "overdue": 0}
    desk.clock.current = vn(2026, 3, 17, 9)
    desk.service.engine.send_message("payment.confirmed", {"dossier_code": code}, {"paid_amount": 200000})
    dossier = desk.service.dossier(code)
    # Paused 11 working days (2/3 09:00 to 17/3 09:00): due 11 working days after 16/3.
    assert dossier["status"] == Status.PROCESSING and dossier["due_at"] == vn(2026, 3, 31, 17)
    assert marked(desk, vn(2026, 3, 17, 9)) == {"due_soon": 0, "overdue": 0}
    assert marked(desk, vn(2026, 3, 30, 17)) == {"due_soon": 1, "overdue": 0}


def test_resuming_after_a_pause_clears_marks_the_later_date_no_longer_deserves(desk):
    code = desk.submit(JUDICIAL_RECORD, delivery_method="desk")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": LLTP_FORM}, actor="citizen-1")
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    # Marks from before the pause (a process may pause at any point; the bundled one pays first).
    with desk.service.engine.store.unit_of_work() as uow:
        store.update_dossier(uow.conn, code, dict.fromkeys(MARKS, vn(2026, 3, 2, 9)))
    desk.clock.current = vn(2026, 3, 4, 9)
    desk.service.engine.send_message("payment.confirmed", {"dossier_code": code}, {"paid_amount": 200000})
    dossier = desk.service.dossier(code)
    assert dossier["due_at"] == vn(2026, 3, 18, 17)
    assert (dossier["due_soon_at"], dossier["overdue_at"]) == (None, None)


def test_a_finished_dossier_is_not_marked(desk):
    code = received(desk, vn(2026, 3, 2, 9))
    desk.do(code, "appraise", {"appraisal_opinion": "Đủ điều kiện", "draft_result": "KQ"}, actor="specialist")
    desk.do(code, "approve", {"approval": "approve", "approval_note": ""}, actor="leader")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.PROCESSED and dossier["finished_at"] is not None
    assert [t["element_id"] for t in dossier["tasks"]] == ["desk_result"]  # still to hand over
    assert marked(desk, vn(2026, 3, 9, 9)) == {"due_soon": 0, "overdue": 0}
    assert flags(desk, code) == (False, False, False)


def test_an_apology_with_a_new_date_clears_the_marks(desk):
    code = received(desk, vn(2026, 3, 2, 9))
    assert marked(desk, vn(2026, 3, 5, 18)) == {"due_soon": 0, "overdue": 1}
    desk.clock.current = vn(2026, 3, 6, 9)
    apologised = desk.service.apologise(code, "Cần xác minh thêm", vn(2026, 3, 9, 17), actor="leader")
    assert (apologised["due_soon_at"], apologised["overdue_at"]) == (None, None)
    assert (apologised["due_soon"], apologised["overdue"], apologised["apology_required"]) == (False,) * 3
    # The new date is watched afresh; no second apology is owed.
    assert marked(desk, vn(2026, 3, 6, 9)) == {"due_soon": 0, "overdue": 0}
    assert marked(desk, vn(2026, 3, 6, 17)) == {"due_soon": 1, "overdue": 0}
    assert flags(desk, code) == (True, False, False)


def test_an_apology_to_a_date_still_close_keeps_it_due_soon(desk):
    code = received(desk, vn(2026, 3, 2, 9))
    marked(desk, vn(2026, 3, 4, 17))
    desk.clock.current = vn(2026, 3, 5, 9)
    apologised = desk.service.apologise(code, "Cần xác minh thêm", vn(2026, 3, 6, 9), actor="leader")
    assert apologised["due_soon_at"] == vn(2026, 3, 4, 17) and apologised["due_soon"] is True
    assert apologised["apology_required"] is False


# -- two workers at once ----------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 200])
def test_two_workers_mark_each_dossier_exactly_once(desk, make_engine, batch):
    subscribe(desk)
    codes = [received(desk, vn(2026, 3, 2, 9)) for _ in range(5)]
    stores = [desk.service.engine.store, make_engine().store]
    start = threading.Barrier(len(stores))
    totals: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def work(db) -> None:
        counts = {"due_soon": 0, "overdue": 0}
        try:
            start.wait()
            for now in (vn(2026, 3, 5, 9), vn(2026, 3, 6, 9)):
                while True:
                    done = deadlines.mark_deadlines(db, now, limit=batch)
                    if not any(done.values()):
                        break
                    counts = {k: counts[k] + done[k] for k in counts}
        except BaseException as exc:  # surfaced below, with the other thread's result
            errors.append(exc)
        totals.append(counts)

    threads = [threading.Thread(target=work, args=(db,)) for db in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(t["due_soon"] for t in totals) == 5 and sum(t["overdue"] for t in totals) == 5
    for code in codes:
        assert [a for a, _, _ in history(desk, code)] == ["dossier_due_soon", "dossier_overdue"]
        assert (deliveries(desk, webhooks.DUE_SOON, code), deliveries(desk, webhooks.OVERDUE, code)) == (1, 1)
    with desk.service.engine.store.unit_of_work(write=False) as uow:
        actions = select(audit.c.action, func.count()).group_by(audit.c.action)
        counted = dict(uow.conn.execute(actions.where(audit.c.actor == "scheduler")).all())
    assert counted == {"dossier_due_soon": 5, "dossier_overdue": 5}
