"""Basic accessibility of every page: axe-core's WCAG 2 A/AA rules (labels, contrast, names, landmarks,
heading order), and the keyboard: the skip link and a login done with Tab and Enter only.

axe-core comes from the npm registry with the pages' other libraries (web/package.json). It is injected
into the page by the test, so its context bypasses the pages' CSP; the bpmn-js canvas (a third-party drawing
surface whose diagram text is also given as tables on our pages) is left out of the audit.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dossiers.conftest import APPLICANT, COPY_FORM
from tests.live import ROOT, LiveServer
from tests.web.conftest import PASSWORD, Screens, Session

AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
CERTIFIED_COPY = "2.000815"  # level 3, commune
AUDIT = """async () => {
  const result = await axe.run(
    { exclude: [[".djs-container"]] },
    {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
      resultTypes: ["violations"],
    }
  );
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({
      id: v.id,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
}"""


def _audit(page: Any, path: str, ready: str) -> list[dict[str, Any]]:
    page.goto(path)
    page.locator(ready).first.wait_for()
    page.wait_for_load_state("networkidle")
    page.add_script_tag(path=str(AXE))
    return list(page.evaluate(AUDIT))


@pytest.fixture
def audited(browser: Any, live: LiveServer) -> Any:
    """A browser context per user that lets the test inject axe-core (bypass_csp), logged in as needed."""
    contexts: list[Any] = []

    def open_as(username: str | None) -> Any:
        context = browser.new_context(base_url=live.base, locale="vi-VN", bypass_csp=True)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        if username:
            response = page.request.post(
                "/api/v1/auth/session", data={"username": username, "password": PASSWORD}
            )
            assert response.ok, response.text()
        return page

    yield open_as
    for context in contexts:
        context.close()


def _arrange(live: LiveServer) -> tuple[str, dict[str, Any]]:
    """A submitted level-3 dossier waiting for the reception desk: its code and the desk's review task."""
    body = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT}
    code = str(live.ok("POST", "/api/v1/dossiers", "citizen", expect=201, json=body)["code"])
    live.complete("citizen", code, "information", {})
    live.complete("citizen", code, "submit_online", {"form_data": COPY_FORM})
    return code, live.task("desk", code, "review")


def test_every_page_passes_axe(audited: Any, live: LiveServer):
    code, review = _arrange(live)
    instance = review["instance_id"]
    pages = [
        (None, "/", "h1"),
        (None, "/thu-tuc", "h1"),
        (None, f"/thu-tuc/{CERTIFIED_COPY}", "h1"),
        (None, "/tra-cuu", "h1"),
        (None, "/dang-nhap", "form"),
        ("citizen", "/ho-so", "table, .card"),
        ("citizen", f"/thu-tuc/{CERTIFIED_COPY}/nop-ho-so", "form"),
        ("citizen", f"/ho-so/{code}", "h1"),
        ("desk", "/can-bo", "table, .card"),
        ("desk", f"/can-bo/nhiem-vu/{review['id']}", "h1"),
        ("analyst", "/mo-hinh", "h1"),
        ("analyst", "/mo-hinh/soan-thao?key=dossier_l3&version=1", ".djs-container"),
        ("leader", f"/giam-sat/qua-trinh/{instance}", ".djs-container"),
        ("leader", "/giam-sat/chi-so", "canvas, table"),
    ]
    found = {}
    for user, path, ready in pages:
        violations = _audit(audited(user), path, ready)
        if violations:
            found[path] = violations
    assert not found, found


def test_the_keyboard_alone_logs_in(people: Any, screens: Screens):
    page = people().page
    page.goto("/dang-nhap")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Bỏ qua, đến nội dung chính"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.get_by_label("Tên đăng nhập").focus()
    page.keyboard.type("citizen")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/ho-so")
    # layout.js writes the greeting after its GET /auth/session: wait for it rather than look once.
    expect(page.get_by_text("Xin chào, Nguyễn Thị Hương")).to_be_visible()
    screens.shot(page, "after-keyboard-login")


def test_a_wrong_password_is_announced_and_the_name_kept(people: Any, screens: Screens):
    session: Session = people()
    page = session.page
    page.goto("/dang-nhap")
    page.get_by_label("Tên đăng nhập").fill("citizen")
    page.get_by_label("Mật khẩu").fill("sai-mật-khẩu-rồi")
    page.get_by_role("button", name="Đăng nhập").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Đăng nhập" in page.url or "/dang-nhap" in page.url
    assert page.get_by_label("Tên đăng nhập").input_value() == "citizen"
    screens.shot(page, "login-refused")
