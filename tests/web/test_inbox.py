"""The officials' inbox in a real browser: queues by lane with counts, overdue and due-soon rows marked in
text and colour, claiming (also when someone else was quicker), the task page with the dossier's data,
declaration and attachments, a refused completion that keeps the input, completion, and the process-control
slip."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from dossiers import store
from engine.store import Store, create_db_engine
from tests.dossiers.conftest import APPLICANT, COPY_FORM
from tests.web.conftest import LiveServer, Screens

CERTIFIED_COPY = "2.000815"  # level 3, the commune's people's committee (the desk's agency)
PDF = b"%PDF-1.4\n% bang tot nghiep\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def _submit(live: LiveServer, *, attachment: bool = False) -> str:
    body = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT, "form_data": COPY_FORM}
    if attachment:
        files = [("attachments", ("bang-tot-nghiep.pdf", PDF, "application/pdf"))]
        created = live.ok(
            "POST", "/api/v1/dossiers", "citizen", expect=201, data={"payload": json.dumps(body)}, files=files
        )
    else:
        created = live.ok("POST", "/api/v1/dossiers", "citizen", expect=201, json=body)
    return str(created["code"])


def _mark(db_url: str, code: str, *, overdue: bool) -> None:
    """Flag a dossier as the deadline job would (there is no API to move a due date earlier)."""
    past = datetime.now(UTC) - timedelta(days=2 if overdue else 0, hours=1)
    marks: dict[str, Any] = {"due_at": past if overdue else past + timedelta(hours=6), "due_soon_at": past}
    if overdue:
        marks["overdue_at"] = past + timedelta(hours=1)
    db = Store(create_db_engine(db_url))
    with db.unit_of_work() as uow:
        store.update_dossier(uow.conn, code, marks)
    db.engine.dispose()


def _task_id(live: LiveServer, user: str, code: str) -> str:
    items = live.ok("GET", "/api/v1/tasks", user)["items"]
    return str(next(t["id"] for t in items if t["dossier_code"] == code))


def test_inbox_claim_task_page_and_completion(live: LiveServer, people: Any, screens: Screens):
    mine, late, soon = _submit(live, attachment=True), _submit(live), _submit(live)
    _mark(live.database_url, late, overdue=True)
    _mark(live.database_url, soon, overdue=False)

    page = people("desk").page
    page.goto("/can-bo")
    expect(page.get_by_role("tab", name="Tiếp nhận 3")).to_have_attribute("aria-selected", "true")
    counts = page.locator("#inbox-counts")
    expect(counts).to_contain_text("3 Chờ xử lý")
    expect(counts.get_by_role("button", name="1 Quá hạn")).to_be_visible()
    expect(counts.get_by_role("button", name="1 Sắp đến hạn")).to_be_visible()
    late_row = page.locator(f"tr[data-dossier-code='{late}']")
    expect(late_row).to_have_class(re.compile(r"\boverdue\b"))
    expect(late_row).to_contain_text("Quá hạn")
    expect(page.locator(f"tr[data-dossier-code='{soon}']")).to_have_class(re.compile(r"\bdue-soon\b"))
    expect(page.locator(f"tr[data-dossier-code='{soon}']")).to_contain_text("Sắp đến hạn")
    expect(page.locator(f"tr[data-dossier-code='{mine}']")).to_contain_text("Chưa có người nhận")
    screens.shot(page, "inbox-desk")

    page.get_by_label("Thời hạn giải quyết").select_option("overdue")
    page.get_by_role("button", name="Lọc", exact=True).click()
    expect(page.locator("#queue tbody tr")).to_have_count(1)
    expect(page.locator("#queue tbody tr")).to_have_attribute("data-dossier-code", late)
    assert "deadline=overdue" in page.url
    screens.shot(page, "inbox-filter-overdue")
    page.get_by_role("button", name="Bỏ lọc").click()
    expect(page.locator("#queue tbody tr")).to_have_count(3)

    # Someone else is quicker: the claim is refused with a message and the list refreshed.
    live.ok("POST", f"/api/v1/tasks/{_task_id(live, 'desk', soon)}/claim", "admin")
    page.get_by_role("button", name=f"Nhận xử lý hồ sơ {soon}").click()
    expect(page.locator("#flash")).to_contain_text(f"Hồ sơ {soon} vừa được người khác (admin) nhận xử lý")
    expect(page.locator(f"tr[data-dossier-code='{soon}']")).to_contain_text("admin")
    page.get_by_role("button", name=f"Nhận xử lý hồ sơ {mine}").click()
    expect(page.locator("#flash")).to_contain_text(f"Bạn đã nhận xử lý hồ sơ {mine}")
    expect(page.locator(f"tr[data-dossier-code='{mine}']")).to_contain_text("Bạn (desk)")
    screens.shot(page, "inbox-claimed")

    page.get_by_role("link", name=f"Xử lý hồ sơ {mine}").click()
    _task_page(page, live, screens, mine)
    _specialist_sees_the_hop(people, screens, mine)
    _stale_completion(page, live, screens, late)


def _task_page(page: Any, live: LiveServer, screens: Screens, code: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text(code)
    expect(page.locator("#dossier-facts")).to_contain_text(APPLICANT["name"])
    expect(page.locator("#dossier-facts")).to_contain_text(APPLICANT["id_number"])
    expect(page.locator("#declaration")).to_contain_text("Bằng tốt nghiệp đại học")
    link = page.get_by_role("link", name="bang-tot-nghiep.pdf")
    download = page.request.get(link.get_attribute("href"))
    assert download.status == 200 and download.body() == PDF
    expect(page.get_by_role("link", name="Xem quy trình")).to_have_attribute(
        "href", re.compile(r"^/giam-sat/qua-trinh/.+")
    )
    expect(page.locator("#claimed-by")).to_contain_text("Bạn (desk)")
    page.get_by_role("button", name="Trả lại").click()
    expect(page.locator("#claim-status")).to_have_text("Đã trả hồ sơ về hàng đợi chung.")
    page.get_by_role("button", name="Nhận xử lý").click()
    expect(page.locator("#claim-status")).to_have_text("Bạn đã nhận xử lý hồ sơ này.")
    screens.shot(page, "task-review")

    # Refusing without a reason: the field's message, and what was chosen stays.
    decision = page.get_by_label("Kết quả kiểm tra")
    decision.select_option(label="Từ chối tiếp nhận hồ sơ")
    page.get_by_role("button", name="Hoàn thành").click()
    reason = page.get_by_label("Lý do từ chối tiếp nhận")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field-error")).to_have_text(["Vui lòng nhập thông tin này."])
    expect(decision).to_have_value("refuse")
    screens.shot(page, "task-refused-without-reason")
    assert live.dossier(code)["status"]["code"] == 1  # nothing was recorded

    decision.select_option(label="Tiếp nhận hồ sơ")
    page.get_by_role("button", name="Hoàn thành").click()
    page.wait_for_url(re.compile(r"/can-bo$"))
    expect(page.locator("#flash")).to_contain_text(f"của hồ sơ {code}")
    expect(page.locator(f"tr[data-dossier-code='{code}']")).to_have_count(0)
    expect(page.get_by_role("tab", name="Tiếp nhận 2")).to_be_visible()
    screens.shot(page, "inbox-after-completion")
    assert live.dossier(code)["status"]["code"] in (2, 4)  # received, with the specialist now


def _specialist_sees_the_hop(people: Any, screens: Screens, code: str) -> None:
    page = people("specialist").page
    page.goto("/can-bo")
    expect(page.get_by_role("tab", name="Chuyên viên 1")).to_be_visible()
    page.get_by_role("link", name=f"Xử lý hồ sơ {code}").click()
    slip = page.locator("#control-slip-table tbody tr")
    expect(slip).to_have_count(3)  # the applicant's two steps, then the desk's review
    for text in ("Kiểm tra, tiếp nhận hồ sơ", "Bộ phận một cửa", "Chuyên viên xử lý", "desk", "Tiếp nhận"):
        expect(slip.last).to_contain_text(text)
    expect(slip.first).to_contain_text("Xem thông tin thủ tục")
    control = page.get_by_role("link", name="Tải Phiếu kiểm soát quá trình giải quyết hồ sơ (PDF)")
    assert page.request.get(control.get_attribute("href")).body().startswith(b"%PDF")
    expect(page.get_by_label("Ý kiến thẩm định")).to_be_visible()
    expect(page.get_by_label("Dự thảo kết quả giải quyết")).to_be_visible()
    screens.shot(page, "task-appraisal-control-slip")


def _stale_completion(page: Any, live: LiveServer, screens: Screens, code: str) -> None:
    """The dossier moved on while the page was open: the official is told, and keeps the input."""
    page.get_by_role("link", name=f"Xử lý hồ sơ {code}").click()
    expect(page.locator("#task-summary")).to_contain_text("Hồ sơ đã quá hạn giải quyết.")
    page.get_by_label("Kết quả kiểm tra").select_option(label="Tiếp nhận hồ sơ")
    task_id = page.evaluate("document.body.dataset.taskId")
    live.ok("POST", f"/api/v1/tasks/{task_id}/complete", "admin", json={"data": {"decision": "accept"}})
    page.get_by_role("button", name="Hoàn thành").click()
    expect(page.get_by_role("alert")).to_contain_text("Hồ sơ đã thay đổi")
    expect(page.get_by_role("button", name="Tải lại trang")).to_be_visible()
    expect(page.get_by_label("Kết quả kiểm tra")).to_have_value("accept")
    screens.shot(page, "task-changed-elsewhere")


def test_inbox_is_for_officials(live: LiveServer, people: Any, screens: Screens):
    page = people().page
    page.goto("/can-bo")
    page.wait_for_url(re.compile(r"/dang-nhap\?next=%2Fcan-bo"))
    citizen = people("citizen").page
    citizen.goto("/can-bo")
    expect(citizen.get_by_text("Trang này dành cho cán bộ, công chức xử lý hồ sơ.")).to_be_visible()
    expect(citizen.get_by_role("link", name="Hồ sơ của tôi").last).to_be_visible()
    screens.shot(citizen, "inbox-citizen")
