"""Browser tests: Debian's Chromium, driven by Playwright, against a live ``motcua serve``.

The server is the real one (granian, two workers, the sandbox gateway on) over a migrated database seeded
with the bundled workflows and catalogue; the pages are used as a person would: by labels and buttons.
Screenshots of every page a test visits are kept under ``var/screenshots/`` (or ``$MOTCUA_SCREENSHOTS``) as
artefacts of the run; they are not committed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import migrated_sqlite
from tests.live import ROOT, LiveServer, running_server

__all__ = ["PASSWORD", "USERS", "LiveServer", "Screens", "Session"]

CHROMIUM = os.environ.get("MOTCUA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(os.environ.get("MOTCUA_SCREENSHOTS", ROOT / "var" / "screenshots"))
PASSWORD = "mật-khẩu-trình-duyệt-2026"
COMMUNE = "000.01.01.H26"  # the commune's people's committee: levels 1-4 procedures of civil status
POLICE = "000.00.14.H26"
# username -> (role, agency, full name)
USERS: dict[str, tuple[str, str | None, str]] = {
    "citizen": ("applicant", None, "Nguyễn Thị Hương"),
    "desk": ("reception", COMMUNE, "Trần Thị Bình"),
    "specialist": ("specialist", COMMUNE, "Lê Văn Cường"),
    "leader": ("leader", COMMUNE, "Phạm Thị Dung"),
    "analyst": ("analyst", None, "Hoàng Văn Em"),
    "admin": ("admin", None, "Vũ Thị Giang"),
    "police.desk": ("reception", POLICE, "Đỗ Văn Khoa"),
}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server on a free port over a freshly seeded SQLite file, the database of ``make run``.

    The pages' own tests run on SQLite: what they check is in the pages, and every API they call is tested on
    both databases in tests/api. The cross-role journeys (test_journeys.py) run the pages on both.
    """
    url = migrated_sqlite(tmp_path / "motcua-web.db")
    with running_server(url, tmp_path, USERS, PASSWORD) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (under CI a missing browser fails the run instead of skipping)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Screens:
    """Takes full-page screenshots into this test's folder of artefacts."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def shot(self, page: Any, name: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def screens(request: pytest.FixtureRequest) -> Screens:
    folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Screens(folder)


class Session:
    """One person's browser context (own cookies) on the live server, failing the test on page errors."""

    def __init__(self, browser: Any, live: LiveServer) -> None:
        self.live = live
        self.context = browser.new_context(
            base_url=live.base,
            locale="vi-VN",
            timezone_id="Asia/Ho_Chi_Minh",
            viewport={"width": 1280, "height": 900},
        )
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.on("request", self._request)

    def _console(self, message: Any) -> None:
        # A refused request (4xx) is logged by Chromium as an error; the pages handle those themselves.
        if message.type == "error" and "status of 4" not in message.text:
            self.errors.append(message.text)

    def _request(self, request: Any) -> None:
        # Everything a page loads comes from our own origin: no CDN, no third-party font or script.
        if not request.url.startswith((self.live.base, "data:", "blob:", "about:")):
            self.errors.append(f"request to another origin: {request.url}")

    def login(self, username: str) -> Any:
        page = self.page
        page.goto("/dang-nhap")
        page.get_by_label("Tên đăng nhập").fill(username)
        page.get_by_label("Mật khẩu").fill(PASSWORD)
        page.get_by_role("button", name="Đăng nhập").click()
        page.wait_for_url(lambda url: "/dang-nhap" not in url)
        return page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(browser: Any, live: LiveServer) -> Iterator[Any]:
    """``people("citizen")`` opens a logged-in browser context for that user (one per name)."""
    opened: dict[str, Session] = {}

    def open_as(username: str | None = None) -> Session:
        key = username or "_anonymous"
        if key not in opened:
            session = Session(browser, live)
            if username:
                session.login(username)
            opened[key] = session
        return opened[key]

    yield open_as
    errors = {name: session.errors for name, session in opened.items() if session.errors}
    for session in opened.values():
        session.close()
    assert not errors, f"errors in the pages' consoles: {errors}"
