"""Monitoring in the browser: an instance drawn with its current and completed elements, and the Decision
766 dashboard with its cards, charts and table. Dossiers are arranged over the API, then looked at."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.dossiers.conftest import APPLICANT, COPY_FORM, LLTP_FORM
from tests.e2e.test_level4_live import _pay_at_the_bank
from tests.live import LiveServer
from tests.web.conftest import Screens

CERTIFIED_COPY = "2.000815"  # level 3, the commune of desk, specialist and leader
JUDICIAL_RECORD = "2.000488"  # level 4, the police of police.desk
COMMUNE = "000.01.01.H26"
POLICE = "000.00.14.H26"


def _submitted(live: LiveServer) -> str:
    """A certified-copy dossier submitted online, waiting for the desk's review."""
    body = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT}
    code = str(live.ok("POST", "/api/v1/dossiers", "citizen", expect=201, json=body)["code"])
    live.complete("citizen", code, "information", {})
    live.complete("citizen", code, "submit_online", {"form_data": COPY_FORM})
    return code


def _finished_and_rated(live: LiveServer) -> str:
    code = _submitted(live)
    live.complete("desk", code, "review", {"decision": "accept"})
    live.complete("specialist", code, "appraise", {"appraisal_opinion": "Đủ điều kiện", "draft_result": "KQ"})
    live.complete("leader", code, "approve", {"approval": "approve", "approval_note": ""})
    live.complete("desk", code, "desk_result", {"fee_paid": True, "handed_over_to": "Nguyễn Thị Hương"})
    live.ok("POST", f"/api/v1/dossiers/{code}/rating", "citizen", json={"score": 5})
    return code


def _paid_online(live: LiveServer) -> str:
    body = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "online"}
    code = str(live.ok("POST", "/api/v1/dossiers", "citizen", expect=201, json=body)["code"])
    live.complete("citizen", code, "information", {})
    live.complete("citizen", code, "submit_online", {"form_data": LLTP_FORM})
    live.complete("police.desk", code, "review", {"decision": "accept"})
    _pay_at_the_bank(live, code)
    return code


def _marker(page: Any, element_id: str) -> str:
    return str(page.locator(f'.djs-element[data-element-id="{element_id}"]').first.get_attribute("class"))


def test_an_official_watches_an_instance_on_its_diagrams(live: LiveServer, people: Any, screens: Screens):
    code = _submitted(live)
    instance_id = live.task("desk", code, "review")["instance_id"]
    page = people("leader").page
    page.goto(f"/giam-sat/qua-trinh/{instance_id}")
    page.locator('.djs-element[data-element-id="call_reception"].mc-active').wait_for()
    assert "mc-done" in _marker(page, "submit_online") and "mc-done" in _marker(page, "information")
    assert "mc-active" not in _marker(page, "call_processing")
    expect(page.get_by_text(code, exact=True).first).to_be_visible()
    assert "Đang thực hiện: " in page.locator("#diagram-text").inner_text()
    screens.shot(page, "instance-main-process")

    # The called fragment: the desk's review is the current task; its deadline timer waits beside it.
    selector = page.get_by_label("Quy trình hiển thị")
    selector.select_option("frag_reception")
    page.locator('.djs-element[data-element-id="review"].mc-active').wait_for()
    assert "mc-done" in _marker(page, "start_reception")
    assert "mc-active" in _marker(page, "review_overdue")
    timers = page.locator("#timers-table")
    assert timers.locator('tr[data-element-id="review_overdue"]').count() == 1
    assert "Hẹn giờ BPMN" in timers.inner_text()

    # The data, pretty-printed and collapsible, and the audit trail.
    data = page.locator("#data-table")
    form_data = data.locator("tr", has=page.locator("code", has_text="form_data"))
    form_data.get_by_text("Đối tượng").click()
    assert '"ho_ten": "Nguyễn Thị Hương"' in form_data.locator("pre").inner_text()
    history = page.locator("#history-table")
    assert history.locator('tr[data-action="started"]').count() == 1
    completed = history.locator('tr[data-action="task_completed"][data-element-id="submit_online"]')
    assert "citizen" in completed.inner_text() and "Hoàn thành nhiệm vụ" in completed.inner_text()
    screens.shot(page, "instance-fragment-data-history")

    # Applicants are refused even for their own dossier's instance: it shows internal data.
    citizen = people("citizen").page
    citizen.goto(f"/giam-sat/qua-trinh/{instance_id}")
    citizen.get_by_text("Trang giám sát dành cho cán bộ").wait_for()
    screens.shot(citizen, "instance-refused-to-applicant")


def _canvas_painted(page: Any, canvas_id: str) -> bool:
    return bool(
        page.evaluate(
            """(id) => {
                const canvas = document.getElementById(id);
                if (!canvas || !window.Chart.getChart(canvas)) return false;
                const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
                let painted = 0;
                for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted += 1;
                return painted > 1000;
            }""",
            canvas_id,
        )
    )


def test_the_dashboard_shows_the_indicators_with_charts(live: LiveServer, people: Any, screens: Screens):
    _finished_and_rated(live)
    waiting = _submitted(live)
    live.complete("desk", waiting, "review", {"decision": "accept"})
    _paid_online(live)

    page = people("analyst").page
    page.goto("/giam-sat/chi-so")
    table = page.locator("#indicator-rows")
    table.wait_for()
    cards = page.locator("#indicator-cards")
    on_time = cards.locator("li", has_text="Tỷ lệ đúng hạn")
    assert "100" in on_time.locator(".value").inner_text() and "1/1" in on_time.inner_text()
    assert "3/3" in cards.locator("li", has_text="Tỷ lệ trực tuyến").inner_text()
    payment = cards.locator("li", has_text="Tỷ lệ thanh toán trực tuyến")
    assert "33,3" in payment.locator(".value").inner_text() and "1/3" in payment.inner_text()
    assert "5,0/5" in cards.locator("li", has_text="Mức độ hài lòng").inner_text()
    assert table.locator(f'tr[data-agency="{COMMUNE}"]').count() == 1
    assert table.locator(f'tr[data-agency="{POLICE}"]').count() == 1
    for canvas in ("rates-chart", "counts-chart"):
        assert page.locator(f"#{canvas}").get_attribute("aria-labelledby")
        assert _canvas_painted(page, canvas), canvas
    screens.shot(page, "dashboard-all-agencies")

    # One agency: the filter reloads the cards, the charts and the table, and the address keeps it.
    page.get_by_label("Cơ quan tiếp nhận").select_option(COMMUNE)
    page.get_by_role("button", name="Xem chỉ số").click()
    page.locator(f"#indicator-rows tr[data-agency='{POLICE}']").wait_for(state="detached")
    assert cards.locator("li", has_text="Tỷ lệ thanh toán trực tuyến").locator(".value").inner_text() == "0%"
    assert f"agency_code={COMMUNE}" in page.url
    assert _canvas_painted(page, "rates-chart")
    screens.shot(page, "dashboard-one-agency")

    # A month the server refuses is shown beside its field, and what was typed stays.
    page.get_by_label("Từ tháng").fill("2020-01")
    page.get_by_role("button", name="Xem chỉ số").click()
    page.get_by_role("alert").wait_for()
    assert page.get_by_label("Từ tháng").input_value() == "2020-01"
    screens.shot(page, "dashboard-refused-period")

    # An official sees their own agency only.
    leader = people("leader").page
    leader.goto("/giam-sat/chi-so")
    leader.locator("#indicator-rows").wait_for()
    [only] = leader.locator("#agency option").all_inner_texts()
    assert COMMUNE in only
    assert leader.locator(f"#indicator-rows tr[data-agency='{POLICE}']").count() == 0
    screens.shot(leader, "dashboard-official")
