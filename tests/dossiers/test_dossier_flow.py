"""Dossiers of every level through their whole life, on SQLite and PostgreSQL (../shared/DOMAIN.md)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader

from dossiers.status import Status
from engine.errors import ConflictError, NotFoundError, ValidationError
from tests.dossiers.conftest import COPY_FORM, LLTP_FORM, PARENT_FORM, vn

JUDICIAL_RECORD = "2.000488"  # level 4, 10 working days
CERTIFIED_COPY = "2.000815"  # level 3, same day
PARENT_CHILD = "1.001022"  # level 2, 3 working days
WILL = "2.000913"  # level 1


def test_level_1_is_information_only(desk):
    info = desk.service.procedure(WILL)
    assert info["level"] == 1 and info["decree_42_class"] == "mot_phan"
    with pytest.raises(ValidationError) as caught:
        desk.submit(WILL)
    assert "procedure_code" in caught.value.errors


def test_level_2_paper_dossier(desk, clock):
    dossier = desk.submit(PARENT_CHILD, channel="in_person")
    code = dossier["code"]
    assert code == "000.01.01.H26-260302-0001"
    assert (dossier["status"], dossier["channel"], dossier["status_name"]) == (1, 1, "Mới đăng ký")
    desk.do(code, "information", actor="citizen-1")
    with pytest.raises(ValidationError) as caught:
        desk.do(
            code, "download_forms", {"form_data": {**PARENT_FORM, "quan_he": "Hàng xóm"}}, actor="citizen-1"
        )
    assert "form_data.quan_he" in caught.value.errors
    desk.do(code, "download_forms", {"form_data": PARENT_FORM}, actor="citizen-1")
    desk.do(code, "record_paper_submission", {"copies": 1}, actor="desk.officer")
    desk.accept_and_process(code)
    dossier = desk.service.dossier(code)
    # Received Monday 2/3 09:00, 3 working days: the day of receipt is not counted -> Thursday 5/3.
    assert dossier["received_at"] == vn(2026, 3, 2, 9, 0)
    assert dossier["due_at"].astimezone(vn(2026, 1, 1).tzinfo).date().isoformat() == "2026-03-05"
    assert dossier["status"] == Status.PROCESSED
    desk.do(code, "desk_result", {"fee_paid": True, "handed_over_to": "Trần Văn Bình"}, actor="desk.officer")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.RESULT_RETURNED and dossier["outcome"] == "early"
    assert [(h["from_role"], h["to_role"]) for h in dossier["handovers"]][-5:] == [
        ("reception", "reception"),
        ("reception", "specialist"),
        ("specialist", "leader"),
        ("leader", "reception"),
        ("reception", "applicant"),  # the result handed over to the person named
    ]
    assert dossier["handovers"][-1]["note"] == "Người nhận kết quả: Trần Văn Bình"


def test_level_3_two_supplements_then_result(desk, clock):
    code = desk.submit(CERTIFIED_COPY)["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": COPY_FORM}, actor="citizen-1")
    items = ["Bản chính bằng tốt nghiệp để đối chiếu", "Bản sao thẻ căn cước"]
    for _ in range(2):
        desk.do(code, "review", {"decision": "supplement", "supplement_items": items}, actor="desk.officer")
        assert desk.status(code) == Status.SUPPLEMENT_REQUESTED
        clock.advance(hours=2)
        desk.do(code, "supplement", {"supplement_note": "Đã bổ sung"}, actor="citizen-1")
        assert desk.status(code) == Status.NEW
    # One complete list: a second, different list is refused and changes nothing.
    with pytest.raises(ValidationError) as caught:
        desk.do(code, "review", {"decision": "supplement", "supplement_items": ["Giấy khác"]}, actor="desk")
    assert "supplement_items" in caught.value.errors
    assert desk.task(code, "review")
    clock.advance(hours=1)  # Monday 14:00, before the 15:00 cut-off
    desk.accept_and_process(code)
    dossier = desk.service.dossier(code)
    assert dossier["supplement_items"] == items
    assert [p["reason"] for p in dossier["pauses"]] == ["supplement", "supplement"]
    assert all(p["ended_at"] is not None for p in dossier["pauses"])
    # Same-day procedure received at 14:00 before the cut-off: due the same day.
    assert dossier["due_at"].astimezone(vn(2026, 1, 1).tzinfo).date().isoformat() == "2026-03-02"
    pdf = desk.service.document(code, "supplement_request")
    assert pdf.startswith(b"%PDF")


def test_refusal_ends_the_dossier_with_its_reason(desk):
    code = desk.submit(CERTIFIED_COPY)["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": COPY_FORM}, actor="citizen-1")
    reason = "Giấy tờ không thuộc thẩm quyền chứng thực của cơ quan"
    desk.do(code, "review", {"decision": "refuse", "refusal_reason": reason}, actor="desk.officer")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.NOT_RECEIVED and dossier["refusal_reason"] == reason
    assert dossier["finished_at"] is not None and dossier["tasks"] == []
    with pytest.raises(ConflictError):
        desk.service.document(code, "receipt")
    assert desk.service.document(code, "refusal").startswith(b"%PDF")


def test_withdrawal_by_the_applicant_only(desk):
    code = desk.submit(JUDICIAL_RECORD, delivery_method="post")["code"]
    desk.do(code, "information", actor="citizen-1")
    with pytest.raises(NotFoundError):
        desk.service.withdraw(code, actor="someone-else")
    dossier = desk.service.withdraw(code, actor="citizen-1")
    assert dossier["status"] == Status.WITHDRAWN and dossier["withdrawn_at"] is not None
    assert dossier["tasks"] == []
    with pytest.raises(ConflictError):
        desk.service.withdraw(code, actor="citizen-1")


def _level_4_until_payment(desk, code):
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": LLTP_FORM}, actor="citizen-1")
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")


def test_level_4_late_dossier_apologises_and_gets_rated(desk, clock):
    code = desk.submit(JUDICIAL_RECORD, delivery_method="post")["code"]
    desk.do(code, "information", actor="citizen-1")
    with pytest.raises(ValidationError) as caught:
        desk.do(code, "submit_online", {"form_data": {**LLTP_FORM, "so_giay_to": "12"}}, actor="citizen-1")
    assert "form_data.so_giay_to" in caught.value.errors
    desk.do(code, "submit_online", {"form_data": LLTP_FORM}, actor="citizen-1")
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.FINANCIAL_OBLIGATION
    # Received Monday 2/3 09:00 + 10 working days -> Monday 16/3, end of day.
    assert dossier["original_due_at"] == vn(2026, 3, 16, 17, 0)
    clock.advance(days=1)  # the applicant pays a day later: the clock was paused meanwhile
    desk.service.engine.send_message("payment.confirmed", {"dossier_code": code}, {"paid_amount": 200000})
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.PROCESSING
    assert [p["reason"] for p in dossier["pauses"]] == ["payment"]
    assert dossier["due_at"] == vn(2026, 3, 17, 17, 0)  # one working day later
    with pytest.raises(ConflictError):  # no rating before the result
        desk.service.rate(code, 5, None, actor="citizen-1")
    clock.current = vn(2026, 3, 18, 9, 0)  # past the due date: late
    assert desk.service.dossier(code)["calendar_late"] is True
    with pytest.raises(ValidationError):
        desk.service.apologise(code, "Cần xác minh", vn(2026, 3, 16, 17), actor="leader")
    reason = "Cần xác minh thông tin án tích tại địa phương cư trú cũ"
    desk.service.apologise(code, reason, vn(2026, 3, 20, 17, 0), actor="leader")
    with pytest.raises(ConflictError):
        desk.service.apologise(code, reason, vn(2026, 3, 25, 17, 0), actor="leader")
    assert desk.service.document(code, "apology").startswith(b"%PDF")
    desk.do(code, "appraise", {"appraisal_opinion": "Không có án tích", "draft_result": "Phiếu số 1"})
    desk.do(code, "approve", {"approval": "approve", "approval_note": ""}, actor="leader")
    number = desk.service.postal_order(code)["tracking_number"]
    desk.service.report_postal_event(number, "collecting", "vnpost")
    assert desk.status(code) == Status.PROCESSED  # decided, still on its way
    desk.service.report_postal_event(number, "delivered", "vnpost")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.RESULT_RETURNED
    # The result came before the new appointment, but after the legal due date: the outcome is late.
    assert dossier["due_at"] == vn(2026, 3, 20, 17, 0) and dossier["outcome"] == "late"
    with pytest.raises(ValidationError):
        desk.service.rate(code, 6, None, actor="citizen-1")
    rated = desk.service.rate(code, 4, "Cán bộ hướng dẫn tận tình", actor="citizen-1")
    assert rated["rating"] == 4
    with pytest.raises(ConflictError):
        desk.service.rate(code, 5, None, actor="citizen-1")


def test_payment_expiry_stops_processing(desk, clock):
    code = desk.submit(JUDICIAL_RECORD, delivery_method="online")["code"]
    _level_4_until_payment(desk, code)
    clock.advance(days=4)
    [fired] = desk.service.engine.fire_due_timers()
    assert fired["element_id"] == "payment_expiry"
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.STOPPED and dossier["finished_at"] is not None


def test_receipt_slip_carries_the_appointment(desk):
    code = desk.submit(JUDICIAL_RECORD, delivery_method="desk")["code"]
    _level_4_until_payment(desk, code)
    pdf = PdfReader(io.BytesIO(desk.service.document(code, "receipt")))
    text = "".join(page.extract_text() for page in pdf.pages)
    assert code in text and "Nguyễn Thị Hương" in text and "16 tháng 3 năm 2026" in text


def test_a_late_result_is_late(desk, clock):
    code = desk.submit(PARENT_CHILD, channel="in_person")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "download_forms", {"form_data": PARENT_FORM}, actor="citizen-1")
    desk.do(code, "record_paper_submission", {}, actor="desk.officer")
    desk.do(code, "review", {"decision": "accept"})
    clock.advance(days=10)
    desk.do(code, "appraise", {"appraisal_opinion": "Đạt", "draft_result": "KQ"})
    desk.do(code, "approve", {"approval": "approve", "approval_note": ""}, actor="leader")
    assert desk.service.dossier(code)["outcome"] == "late"
    assert timedelta(0) < clock.now() - desk.service.dossier(code)["due_at"]
