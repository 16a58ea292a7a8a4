"""The citizen portal in a real browser: find a procedure, read it, download its form, submit a level-3
dossier whose refused field is fixed without retyping, then find it in "my dossiers" and by tracking."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from tests.dossiers.conftest import APPLICANT
from tests.live import LiveServer
from tests.web.conftest import PASSWORD, Screens

JUDICIAL_RECORD = "2.000488"  # level 4, toàn trình
PARENT_RECOGNITION = "1.001022"  # level 2: forms downloaded, paper handed in
CERTIFIED_COPY = "2.000815"  # level 3, một phần
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
LABEL_ID = "Số Thẻ căn cước/Căn cước công dân (12 chữ số) hoặc số Hộ chiếu"


def test_a_visitor_finds_a_procedure_without_diacritics_and_downloads_its_form(people: Any, screens: Screens):
    page = people().page
    page.goto("/")
    page.get_by_role("heading", name="Bốn mức độ dịch vụ công trực tuyến").wait_for()
    expect(page.get_by_role("link", name="Tra cứu hồ sơ").first).to_be_visible()
    expect(page.get_by_role("link", name="Đăng nhập để nộp hồ sơ")).to_be_visible()
    page.get_by_text("2 thủ tục mức độ 4").wait_for()
    screens.shot(page, "home")

    page.get_by_label("Tìm thủ tục hành chính").fill("phieu ly lich tu phap")
    page.get_by_role("button", name="Tìm kiếm").click()
    page.wait_for_url(re.compile(r"/thu-tuc\?q=phieu"))
    card = page.locator(".procedure-card", has_text="Cấp Phiếu lý lịch tư pháp")
    card.wait_for()
    assert page.locator(".procedure-card").count() == 1
    expect(card.get_by_text("Mức độ 4")).to_be_visible()
    expect(card.get_by_text("Toàn trình")).to_be_visible()
    assert "10 ngày làm việc" in card.inner_text()
    screens.shot(page, "catalogue-search")

    page.get_by_label("Tên hoặc mã thủ tục").fill("")
    page.get_by_label("Mức độ").select_option("3")
    page.get_by_text("Tìm thấy 2 thủ tục.").wait_for()
    assert page.locator(".procedure-card", has_text="Một phần").count() == 2
    screens.shot(page, "catalogue-level-3")

    page.goto(f"/thu-tuc?q={JUDICIAL_RECORD}")
    page.get_by_role("link", name=re.compile("^Cấp Phiếu lý lịch tư pháp")).click()
    page.wait_for_url(f"**/thu-tuc/{JUDICIAL_RECORD}")
    page.get_by_role("heading", name="Thông tin chung").wait_for()
    for heading in ("Trình tự thực hiện", "Thành phần hồ sơ", "Phí, lệ phí", "Căn cứ pháp lý"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    body = page.locator("main").inner_text()
    assert "200.000 đồng" in body and "Thông tư 244/2016/TT-BTC" in body and "Luật Lý lịch tư pháp" in body
    assert page.get_by_role("link", name="Nộp hồ sơ trực tuyến").get_attribute("href") == (
        f"/thu-tuc/{JUDICIAL_RECORD}/nop-ho-so"
    )
    download = page.get_by_role("link", name=re.compile(r"^Tải mẫu \(PDF\): Tờ khai yêu cầu cấp Phiếu")).first
    form = page.request.get(download.get_attribute("href"))
    assert form.ok and form.headers["content-type"] == "application/pdf" and form.body().startswith(b"%PDF")
    screens.shot(page, "procedure-level-4")

    page.goto(f"/thu-tuc/{PARENT_RECOGNITION}")
    page.get_by_role("heading", name="Nộp hồ sơ").wait_for()
    assert "nộp hồ sơ giấy trực tiếp tại Bộ phận một cửa" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="Nộp hồ sơ trực tuyến").count() == 0
    screens.shot(page, "procedure-level-2")


def _declare(page: Any, id_number: str) -> None:
    page.get_by_label("Họ và tên người yêu cầu chứng thực").fill("Nguyễn Thị Hương")
    page.get_by_label("Loại giấy tờ tùy thân").select_option("Thẻ căn cước")
    page.get_by_label(LABEL_ID).fill(id_number)
    page.get_by_label("Tên giấy tờ, văn bản (bản chính)").fill("Bằng tốt nghiệp đại học")
    page.get_by_label("Nguồn gốc bản chính").select_option("Cơ quan, tổ chức có thẩm quyền của Việt Nam")
    page.get_by_label("Số trang của bản chính").fill("2")
    page.get_by_label("Số bản sao yêu cầu chứng thực").fill("3")


def test_a_citizen_fixes_a_refused_field_submits_and_tracks_the_dossier(
    people: Any, live: LiveServer, screens: Screens
):
    page = people("citizen").page
    page.goto(f"/thu-tuc/{CERTIFIED_COPY}/nop-ho-so")
    page.get_by_role("button", name="Nộp hồ sơ").wait_for()
    assert page.get_by_label("Họ và tên người nộp").input_value() == "Nguyễn Thị Hương"
    page.get_by_label("Số điện thoại liên hệ").fill("0912345678")
    _declare(page, "12345")  # a Thẻ căn cước number has 12 digits
    page.get_by_label("Tệp đính kèm").set_input_files(
        [{"name": "bằng tốt nghiệp.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_role("button", name="Nộp hồ sơ").click()

    field = page.get_by_label(LABEL_ID)
    message = page.locator(".field", has=field).locator(".field-error")
    message.wait_for()
    assert message.inner_text() == "Không đúng định dạng: cần đúng 12 chữ số."
    assert field.get_attribute("aria-invalid") == "true"
    expect(page.get_by_role("alert").get_by_text("Thông tin chưa hợp lệ")).to_be_visible()
    assert field.input_value() == "12345"  # nothing typed is lost
    assert page.get_by_label("Tên giấy tờ, văn bản (bản chính)").input_value() == "Bằng tốt nghiệp đại học"
    assert page.get_by_label("Số điện thoại liên hệ").input_value() == "0912345678"
    assert page.get_by_label("Tệp đính kèm").evaluate("input => input.files.length") == 1
    assert live.ok("GET", "/api/v1/dossiers", "citizen")["page"]["total"] == 0  # refused before creation
    screens.shot(page, "submission-refused")

    field.fill("001190012345")
    page.get_by_role("button", name="Nộp hồ sơ").click()
    page.wait_for_url(re.compile(r"/ho-so/000\.01\.01\.H26-\d{6}-\d{4}$"))
    code = page.url.rsplit("/", 1)[1]
    page.get_by_text(f"Đã nộp hồ sơ thành công. Mã hồ sơ của bạn: {code}.").wait_for()
    assert page.locator("[data-status='1']").first.inner_text() == "Mới đăng ký"
    expect(page.get_by_role("link", name="bằng tốt nghiệp.pdf")).to_be_visible()
    expect(page.get_by_role("button", name="Rút hồ sơ")).to_be_visible()
    screens.shot(page, "dossier-submitted")
    assert live.ok("GET", "/api/v1/dossiers", "citizen")["page"]["total"] == 1
    assert live.dossier(code)["applicant"]["phone"] == "0912345678"

    page.get_by_role("link", name="Hồ sơ của tôi").first.click()
    row = page.get_by_role("row", name=re.compile(re.escape(code)))
    row.wait_for()
    assert "Mới đăng ký" in row.inner_text() and "Chứng thực bản sao" in row.inner_text()
    screens.shot(page, "my-dossiers")

    visitor = people().page
    visitor.goto("/tra-cuu")
    visitor.get_by_label("Mã hồ sơ").fill(code)
    visitor.get_by_role("button", name="Tra cứu").click()
    visitor.get_by_role("heading", name="Kết quả tra cứu").wait_for()
    shown = visitor.locator("#track-result").inner_text()
    assert code in shown and "Mới đăng ký" in shown and "Chứng thực bản sao" in shown
    assert "Nguyễn Thị Hương" not in visitor.content()
    screens.shot(visitor, "tracking")

    desk = visitor  # the same browser, now logged in as the reception desk of the commune
    desk.goto(f"/dang-nhap?next=/ho-so/{code}")
    desk.get_by_label("Tên đăng nhập").fill("desk")
    desk.get_by_label("Mật khẩu").fill(PASSWORD)
    desk.get_by_role("button", name="Đăng nhập").click()
    desk.wait_for_url(f"**/ho-so/{code}")
    desk.get_by_text("chỉ xem, không thao tác thay công dân").wait_for()
    assert desk.get_by_role("button", name="Rút hồ sơ").count() == 0
    screens.shot(desk, "dossier-as-official")


def test_a_dossier_whose_declaration_is_refused_is_continued_not_submitted_twice(
    people: Any, live: LiveServer, screens: Screens
):
    """The page keeps the code of a dossier it created; a refused declaration is fixed on that dossier."""
    body = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT}  # created, not declared yet
    code = live.ok("POST", "/api/v1/dossiers", "citizen", expect=201, json=body)["code"]
    page = people("citizen").page
    page.goto(f"/thu-tuc/{CERTIFIED_COPY}/nop-ho-so")
    page.get_by_role("button", name="Nộp hồ sơ").wait_for()
    kept = json.dumps({"dossier": code, "values": {"applicant": APPLICANT, "form_data": {}}})
    page.evaluate(
        "([key, value]) => sessionStorage.setItem(key, value)", [f"motcua.submit.{CERTIFIED_COPY}", kept]
    )
    page.reload()
    page.get_by_text(f"Hồ sơ {code} đã được tạo cùng các tệp đính kèm").wait_for()
    assert page.get_by_label("Địa chỉ liên hệ").input_value() == APPLICANT["address"]
    assert page.get_by_label("Địa chỉ liên hệ").is_disabled()

    _declare(page, "12345")
    page.get_by_role("button", name="Nộp hồ sơ").click()
    page.locator(".field", has=page.get_by_label(LABEL_ID)).locator(".field-error").wait_for()
    assert live.task("citizen", code, "submit_online")  # the task refused the declaration, which waits
    assert page.get_by_label("Tên giấy tờ, văn bản (bản chính)").input_value() == "Bằng tốt nghiệp đại học"
    screens.shot(page, "declaration-refused-on-the-task")

    page.get_by_label(LABEL_ID).fill("001190012345")
    page.get_by_role("button", name="Nộp hồ sơ").click()
    page.wait_for_url(f"**/ho-so/{code}")
    page.locator("[data-status='1']").first.wait_for()
    assert live.ok("GET", "/api/v1/dossiers", "citizen")["page"]["total"] == 1
    screens.shot(page, "declaration-completed")
