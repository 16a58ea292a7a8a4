"""Every page's frame: login through the session cookie, the visitor counter, and no third-party origin."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import LiveServer, Screens


def test_login_sets_an_http_only_session_and_shows_the_user(people: Any, live: LiveServer, screens: Screens):
    page = people("citizen").page
    page.goto("/")
    # layout.js writes the greeting once GET /api/v1/auth/session answers: wait for it, as for the counter.
    expect(page.get_by_text("Xin chào, Nguyễn Thị Hương")).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["motcua_session"]["httpOnly"] and cookies["motcua_session"]["sameSite"] == "Strict"
    assert not cookies["motcua_csrf"]["httpOnly"]
    counter = page.locator("[data-visit=total]")
    expect(counter).not_to_have_text("…")  # filled from /api/v1/stats/visits (no eval: the CSP forbids it)
    assert int(counter.text_content().replace(".", "")) >= 1
    screens.shot(page, "home-logged-in")
