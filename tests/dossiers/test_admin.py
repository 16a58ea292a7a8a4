"""Catalogue binding and the calendar's admin table, through the dossier service."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pytest

from dossiers.service import DossierService
from engine.errors import DefinitionError, NotFoundError, ValidationError
from tests.dossiers.conftest import COPY_FORM, PARENT_FORM, WORKFLOWS, vn

PARENT_CHILD = "1.001022"


def test_a_procedure_bound_to_a_lower_level_bpmn_is_refused(desk, tmp_path):
    folder = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS / "forms", folder / "forms")
    shutil.copytree(WORKFLOWS / "procedures", folder / "procedures")
    path = folder / "procedures" / "2.000488.json"
    record = json.loads(path.read_text())
    record["bpmn"] = "judicial_record_l4"  # a process of the right name pattern that is not deployed
    path.write_text(json.dumps(record, ensure_ascii=False))
    with pytest.raises(DefinitionError, match="not deployed"):
        desk.service.seed_catalogue(folder)
    level_3 = (
        (WORKFLOWS / "bpmn" / "dossier_l3.bpmn")
        .read_bytes()
        .replace(b'id="dossier_l3"', b'id="judicial_record_l4"')
    )
    desk.service.engine.deploy([("judicial_record_l4.bpmn", level_3)])
    with pytest.raises(DefinitionError, match="does not conform") as caught:
        desk.service.seed_catalogue(folder)
    assert any("payment" in p["message"] for p in caught.value.details["problems"])
    # Nothing of the refused seed was stored.
    assert desk.service.procedure("2.000488")["bpmn"] == "dossier_l4"


def test_seeding_twice_changes_nothing(desk):
    before = desk.service.procedures()
    desk.service.seed_catalogue(WORKFLOWS)
    after = desk.service.procedures()
    assert [p["code"] for p in after] == [p["code"] for p in before]
    assert len(after) >= 6 and {p["level"] for p in after} == {1, 2, 3, 4}
    assert {p["code"]: p["decree_42_class"] for p in after}["2.000488"] == "toan_trinh"


def test_a_declared_day_off_moves_the_due_date(desk):
    service: DossierService = desk.service
    assert service.seed_calendar() == 2 and service.seed_calendar() == 0
    service.set_calendar_day(
        date(2026, 3, 4), working=False, note="Nghỉ bù theo thông báo (thử nghiệm)", actor="admin"
    )
    assert [d["day"] for d in service.calendar_days()][-1] == date(2026, 3, 4)
    with pytest.raises(ValidationError):
        service.set_calendar_day(date(2026, 3, 5), working=False, note=" ", actor="admin")
    code = desk.submit(PARENT_CHILD, channel="in_person")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "download_forms", {"form_data": PARENT_FORM}, actor="citizen-1")
    desk.do(code, "record_paper_submission", {}, actor="desk.officer")
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    # Received Monday 2/3, 3 working days with Wednesday 4/3 off: Tue, Thu, Fri -> Friday 6/3.
    assert service.dossier(code)["due_at"] == vn(2026, 3, 6, 17, 0)
    service.unset_calendar_day(date(2026, 3, 4))
    with pytest.raises(NotFoundError):
        service.unset_calendar_day(date(2026, 3, 4))


def test_a_make_up_saturday_counts(desk):
    desk.service.set_calendar_day(date(2026, 3, 7), working=True, note="Làm bù (thử nghiệm)", actor="admin")
    code = desk.submit("2.000815")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": COPY_FORM}, actor="citizen-1")
    desk.clock.current = vn(2026, 3, 6, 16, 0)  # Friday after the 15:00 cut-off
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    # Deemed received on the next working day, the make-up Saturday 7/3; a same-day procedure is due then.
    assert desk.service.dossier(code)["due_at"] == vn(2026, 3, 7, 17, 0)


def test_blank_and_prefilled_forms(desk):
    import io

    from pypdf import PdfReader

    def text(pdf: bytes) -> str:
        return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)

    blank = text(desk.service.form_pdf(PARENT_CHILD, "ho_tich_to_khai_nhan_cha_me_con"))
    assert ("Trần Văn Bình" not in blank and "Họ, chữ đệm, tên" in blank) or "nhận" in blank
    with pytest.raises(NotFoundError):
        desk.service.form_pdf(PARENT_CHILD, "lltp_mau_03")
    code = desk.submit(PARENT_CHILD, channel="in_person")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "download_forms", {"form_data": PARENT_FORM}, actor="citizen-1")
    filled = text(desk.service.prefilled_form(code))
    assert "Trần Văn Bình" in filled and "Trần Minh Khôi" in filled
