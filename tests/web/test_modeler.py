"""The analysts' modeler in a real browser: the definitions list, bpmn-js with our properties panel, lint at a
level with the problems drawn on the diagram, deployment of a new version, and drafts kept on the server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import LiveServer, Screens

NEW_NAME = "Nộp hồ sơ trực tuyến qua Cổng dịch vụ công"
DRAFT_NAME = "Nộp hồ sơ trực tuyến (đang sửa)"


def _open_dossier_l3(page: Any, screens: Screens) -> None:
    page.goto("/mo-hinh")
    card = page.locator("section[data-key=dossier_l3]")
    expect(card).to_contain_text("Phiên bản 1")
    expect(card).to_contain_text("mới nhất")
    screens.shot(page, "definitions")
    card.get_by_role("link", name="Mở trong trình soạn thảo").click()
    page.wait_for_url(re.compile(r"/mo-hinh/soan-thao\?key=dossier_l3&version=1$"))
    expect(page.locator('g.djs-element[data-element-id="submit_online"]')).to_be_visible()
    expect(page.get_by_text("Phiên bản 1 đã triển khai của dossier_l3.")).to_be_visible()


def _check(page: Any, level: str) -> None:
    page.get_by_label("Mức độ").select_option(level)
    page.get_by_role("button", name="Kiểm tra").click()


def _set(page: Any, label: str, value: str, key: str = "Tab") -> None:
    """Type into a field of the properties panel and leave it (Tab) or apply it (Enter)."""
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press(key)


def _break_and_lint(page: Any, screens: Screens) -> None:
    """Through the properties panel the online submission loses its form; level 3 no longer holds."""
    page.locator('g.djs-element[data-element-id="submit_online"]').click()
    expect(page.get_by_label("Mã phần tử (id)")).to_have_value("submit_online")
    expect(page.get_by_label("Vai trò trong quy trình (role)")).to_have_value("submission")
    expect(page.locator(".properties-lane")).to_contain_text("applicant")
    expect(page.get_by_label("Biểu mẫu (formKey)")).to_have_value("dossier_submission")
    _set(page, "Biểu mẫu (formKey)", "")
    expect(page.get_by_role("status").filter(has_text="Có thay đổi chưa lưu")).to_be_visible()
    _check(page, "3")
    problems = page.locator("#problem-list")
    expect(problems).to_contain_text("level 3 needs an applicant submission")
    expect(problems).to_contain_text("'submit_online' has that role but has no formKey")
    expect(page.locator('g.djs-element.lint-error[data-element-id="submit_online"]')).to_be_visible()
    pool = page.locator('g.djs-element.lint-error-pool[data-element-id="Participant_dossier_l3"]')
    expect(pool).to_be_visible()
    expect(page.locator(".djs-overlays .lint-badge")).to_have_count(2)
    screens.shot(page, "lint-problem-on-diagram")


def _fix_and_lint(page: Any, screens: Screens) -> None:
    """The problem selects its element; the fix goes through the panel, with undo and redo."""
    page.get_by_label("Mức độ").focus()  # leave the panel, so that the click below re-selects
    page.locator("#problem-list").get_by_role("button").first.click()
    expect(page.get_by_label("Phần tử", exact=True)).to_have_value("submit_online")
    _set(page, "Biểu mẫu (formKey)", "dossier_submission")
    _set(page, "Tên", NEW_NAME)
    expect(page.locator('g.djs-element[data-element-id="submit_online"]')).to_contain_text("Cổng dịch vụ")
    page.get_by_role("button", name="Hoàn tác").click()
    expect(page.get_by_label("Tên", exact=True)).to_have_value("Nộp hồ sơ trực tuyến")
    page.get_by_role("button", name="Làm lại").click()
    expect(page.get_by_label("Tên", exact=True)).to_have_value(NEW_NAME)
    _check(page, "3")
    expect(page.get_by_text("Không phát hiện vấn đề nào khi kiểm tra mức độ 3.")).to_be_visible()
    expect(page.locator("g.djs-element.lint-error, g.djs-element.lint-error-pool")).to_have_count(0)
    screens.shot(page, "lint-clean")


def _deploy(page: Any, live: LiveServer, screens: Screens) -> None:
    page.get_by_role("button", name="Triển khai").click()
    expect(page.locator("#problems")).to_contain_text("Đã triển khai dossier_l3 phiên bản 2")
    screens.shot(page, "deployed")
    versions = live.ok("GET", "/api/v1/definitions?key=dossier_l3", "analyst")
    assert [(v["version"], v["deployed_by"]) for v in versions] == [(2, "analyst"), (1, "seed")]
    xml = live.ok("GET", "/api/v1/definitions/dossier_l3/versions/2/xml", "analyst").text
    assert f'name="{NEW_NAME}"' in xml and 'name="formKey" value="dossier_submission"' in xml


def _draft_round_trip(page: Any, live: LiveServer, screens: Screens) -> None:
    """A draft kept on the server: reopened after a reload, downloadable, listed, offered; not a version."""
    _set(page, "Tên", DRAFT_NAME, key="Enter")  # Enter applies a field too
    page.get_by_role("button", name="Lưu bản nháp").click()
    expect(page.get_by_role("status").filter(has_text="Đã lưu bản nháp dossier_l3")).to_be_visible()
    page.reload()
    expect(page.get_by_text(re.compile(r"Bản nháp của bạn \(soạn từ phiên bản 2\)"))).to_be_visible()
    expect(page.locator('g.djs-element[data-element-id="submit_online"]')).to_contain_text("đang sửa")
    page.get_by_label("Phần tử", exact=True).select_option("submit_online")
    expect(page.get_by_label("Tên", exact=True)).to_have_value(DRAFT_NAME)
    screens.shot(page, "draft-reopened")
    with page.expect_download() as download:
        page.get_by_role("button", name="Tải xuống .bpmn").click()
    assert download.value.suggested_filename == "dossier_l3.bpmn"
    assert DRAFT_NAME in Path(download.value.path()).read_text(encoding="utf-8")
    assert [v["version"] for v in live.ok("GET", "/api/v1/definitions?key=dossier_l3", "analyst")] == [2, 1]

    page.goto("/mo-hinh")
    drafts = page.locator("#drafts-table")
    expect(drafts).to_contain_text("dossier_l3")
    expect(drafts).to_contain_text("Phiên bản 2")
    card = page.locator("section[data-key=dossier_l3]")
    expect(card).to_contain_text("Phiên bản 2")
    screens.shot(page, "definitions-with-draft")
    card.get_by_role("link", name="dossier_l3 phiên bản 2").click()
    page.get_by_role("link", name="Mở bản nháp").click()
    page.wait_for_url(re.compile(r"key=dossier_l3&draft=1$"))
    expect(page.locator('g.djs-element[data-element-id="submit_online"]')).to_contain_text("đang sửa")


def test_analyst_breaks_checks_fixes_deploys_and_keeps_a_draft(
    people: Any, live: LiveServer, screens: Screens
):
    page = people("analyst").page
    _open_dossier_l3(page, screens)
    screens.shot(page, "modeler-opened")
    _break_and_lint(page, screens)
    _fix_and_lint(page, screens)
    _deploy(page, live, screens)
    _draft_round_trip(page, live, screens)


def _service_task_and_timer(page: Any, live: LiveServer, screens: Screens) -> None:
    """The operator of a service task (with its parameters and retries) and a boundary timer, edited in the
    panel, checked by the server and saved: the draft's XML carries them as the engine reads them."""
    page.goto("/mo-hinh/soan-thao?key=frag_payment&version=1")
    page.get_by_label("Phần tử", exact=True).select_option("request_payment")
    expect(page.get_by_label("Toán tử (operator)")).to_have_value("payment.request")
    expect(page.get_by_label("Biến nhận kết quả (resultVariable)")).to_have_value("payment_request")
    expect(page.get_by_label("Giá trị (biểu thức) tham số 1")).to_have_value("fee_total")
    _set(page, "Số lần thử lại khi lỗi (retries)", "2")
    page.get_by_role("button", name="Thêm tham số").click()
    _set(page, "Tên tham số 4", "procedure_code")
    _set(page, "Giá trị (biểu thức) tham số 4", "procedure_code")
    screens.shot(page, "service-task-panel")
    page.get_by_label("Phần tử", exact=True).select_option("payment_expiry")
    expect(page.get_by_label("Loại hẹn giờ")).to_have_value("timeDuration")
    expect(page.get_by_label("Biểu thức thời gian")).to_have_value('"P3D"')
    _set(page, "Biểu thức thời gian", "working_days(3)")
    _check(page, "")
    expect(page.get_by_text("Không phát hiện vấn đề nào khi kiểm tra cấu trúc")).to_be_visible()
    screens.shot(page, "timer-panel")
    page.get_by_role("button", name="Lưu bản nháp").click()
    expect(page.get_by_role("status").filter(has_text="Đã lưu bản nháp frag_payment")).to_be_visible()
    xml = live.ok("GET", "/api/v1/definitions/frag_payment/draft", "analyst")["xml"]
    assert '<spiffworkflow:retry retries="2" />' in xml
    assert '<spiffworkflow:parameter id="procedure_code" type="any" value="procedure_code" />' in xml
    assert '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">working_days(3)</bpmn:timeDuration>' in xml


def _new_process(page: Any, live: LiveServer, screens: Screens) -> None:
    """A new process, renamed through the panel (the pool's process id is its key), kept as a draft."""
    page.goto("/mo-hinh")
    page.get_by_role("link", name="Quy trình mới").click()
    expect(page.get_by_text("Quy trình mới, chưa lưu.")).to_be_visible()
    process_id = page.get_by_label("Mã quy trình (process id)")
    expect(process_id).to_have_value(re.compile(r"^quy_trinh_moi_"))
    process_id.fill("chung_thuc_l3")
    process_id.press("Tab")
    page.get_by_label("Tên quy trình").fill("Chứng thực bản sao điện tử từ bản chính")
    page.get_by_label("Tên quy trình").press("Tab")
    page.get_by_role("button", name="Lưu bản nháp").click()
    expect(page.get_by_role("status").filter(has_text="Đã lưu bản nháp chung_thuc_l3")).to_be_visible()
    screens.shot(page, "new-process-draft")
    draft = live.ok("GET", "/api/v1/definitions/chung_thuc_l3/draft", "analyst")
    assert draft["name"] == "Chứng thực bản sao điện tử từ bản chính" and draft["base_version"] is None
    assert 'processRef="chung_thuc_l3"' in draft["xml"]


def test_refused_deployment_is_drawn_like_lint_and_others_are_kept_out(
    people: Any, live: LiveServer, screens: Screens
):
    page = people("analyst").page
    _open_dossier_l3(page, screens)
    # By keyboard: the element picker reaches the call of the reception fragment, which is pointed elsewhere.
    page.get_by_label("Phần tử", exact=True).select_option("call_reception")
    called = page.get_by_label("Quy trình được gọi (calledElement)")
    expect(called).to_have_value("frag_reception")
    called.fill("frag_khong_ton_tai")
    called.press("Tab")
    page.get_by_role("button", name="Triển khai").click()
    expect(page.locator("#problems")).to_contain_text("Không triển khai được")
    expect(page.locator("#problem-list")).to_contain_text("frag_khong_ton_tai")
    expect(page.locator("#problem-list")).to_contain_text("call_reception")
    expect(page.locator('g.djs-element.lint-error[data-element-id="call_reception"]')).to_be_visible()
    screens.shot(page, "deploy-refused")
    assert [v["version"] for v in live.ok("GET", "/api/v1/definitions?key=dossier_l3", "analyst")] == [1]

    _service_task_and_timer(page, live, screens)
    _new_process(page, live, screens)

    citizen = people("citizen").page
    citizen.goto("/mo-hinh")
    expect(citizen.get_by_role("alert")).to_contain_text("dành cho cán bộ phân tích nghiệp vụ")
    anonymous = people().page
    anonymous.goto("/mo-hinh/soan-thao?key=dossier_l3")
    anonymous.wait_for_url(re.compile(r"/dang-nhap\?next="))
