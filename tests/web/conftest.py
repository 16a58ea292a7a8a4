"""Browser tests: Debian's Chromium, driven by Playwright, against a live ``motcua serve``.

The server is the real one (gunicorn, two workers, the sandbox gateway on) over a migrated database seeded with
the bundled workflows and catalogue; the pages are used as a person would, through their labels and buttons.
Screenshots of every page a test visits are kept under ``var/screenshots/`` (or ``$MOTCUA_SCREENSHOTS``) as
artefacts of the run; they are not committed.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from argon2 import PasswordHasher

from accounts.service import Accounts
from motcua.bundle import bundled_bpmn
from motcua.settings import Settings
from motcua.wiring import build_dossiers, build_engine

ROOT = Path(__file__).resolve().parents[2]
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A running ``motcua serve`` and bearer tokens of its users, for arranging data over the API."""

    base: str
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, user: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        url = path if path.startswith("http") else self.base + path
        return requests.request(method, url, headers=headers, timeout=30, allow_redirects=False, **kwargs)

    def ok(self, method: str, path: str, user: str | None = None, expect: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, user, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text[:500])
        return response.json() if "json" in response.headers.get("Content-Type", "") else response

    def dossier(self, code: str, user: str = "citizen") -> dict[str, Any]:
        return dict(self.ok("GET", f"/api/v1/dossiers/{code}", user))


def _seed(db_url: str) -> None:
    """The catalogue and the accounts, as `motcua seed` and `motcua users add` would write them."""
    settings = Settings(database_url=db_url, scheduler=False)
    engine = build_engine(settings)
    engine.deploy(bundled_bpmn(settings.workflows_dir), deployed_by="seed")
    build_dossiers(engine, settings).seed_catalogue(settings.workflows_dir)
    accounts = Accounts(engine.store, engine.clock, hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    for name, (role, agency, full_name) in USERS.items():
        accounts.create_user(name, PASSWORD, roles={role}, full_name=full_name, agency_code=agency)
    engine.store.engine.dispose()


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server on a free port over a freshly seeded database."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MOTCUA_DATABASE_URL": db_url,
        "MOTCUA_PUBLIC_URL": base,
        "MOTCUA_PAYMENT_SANDBOX": "on",
        "MOTCUA_VNPAY_TMN_CODE": "MOTCUA01",
        "MOTCUA_VNPAY_HASH_SECRET": secrets.token_hex(32),
        "MOTCUA_VNPAY_PAY_URL": f"{base}/sandbox/vnpay/paymentv2/vpcpay.html",
        "MOTCUA_VNPAY_API_URL": f"{base}/sandbox/vnpay/merchant_webapi/api/transaction",
        "MOTCUA_LINK_SECRET": secrets.token_hex(32),
        "MOTCUA_SCHEDULER": "off",
    }
    _seed(db_url)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "motcua.cli", "serve", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(base, log_path)
    try:
        _wait_healthy(base, process, log_path)
        for name in USERS:
            body = {"username": name, "password": PASSWORD}
            server.tokens[name] = server.ok("POST", "/api/v1/auth/token", json=body)["access_token"]
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"motcua serve exited:\n{log_path.read_text()}")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"motcua serve did not become healthy:\n{log_path.read_text()}")


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
            base_url=live.base, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", viewport={"width": 1280, "height": 900}
        )
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" and "status of 4" not in msg.text else None
        )

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
