"""A live ``motcua serve`` (granian, two workers, the sandbox gateway on) for end-to-end and browser tests.

The database is migrated by the ``db_url`` fixture and seeded here in-process, as ``motcua seed`` and
``motcua users add`` would write it (a subprocess per command costs seconds); the server is the real one.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from argon2 import PasswordHasher

from accounts.service import Accounts
from motcua.bundle import bundled_bpmn
from motcua.settings import Settings
from motcua.wiring import build_dossiers, build_engine

ROOT = Path(__file__).resolve().parents[1]
# username -> (role, agency code or None, full name)
Users = Mapping[str, tuple[str, str | None, str]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A running server and a bearer token per user, for arranging and checking data over the API."""

    base: str
    log: Path
    database_url: str
    password: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        """A bearer token of ``user`` (logged in on first use)."""
        if user not in self.tokens:
            body = {"username": user, "password": self.password}
            self.tokens[user] = self.ok("POST", "/api/v1/auth/token", json=body)["access_token"]
        return self.tokens[user]

    def call(self, method: str, path: str, user: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        url = path if path.startswith("http") else self.base + path
        return requests.request(method, url, headers=headers, timeout=30, allow_redirects=False, **kwargs)

    def ok(self, method: str, path: str, user: str | None = None, expect: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, user, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text[:500])
        return response.json() if "json" in response.headers.get("Content-Type", "") else response

    def task(self, user: str, code: str, element_id: str) -> dict[str, Any]:
        """The one ready task of dossier ``code`` in ``user``'s queue, which must be ``element_id``."""
        items = self.ok("GET", "/api/v1/tasks", user)["items"]
        found = [t for t in items if t["dossier_code"] == code]
        assert [t["element_id"] for t in found] == [element_id], found
        return dict(found[0])

    def complete(self, user: str, code: str, element_id: str, data: dict[str, Any]) -> None:
        task = self.task(user, code, element_id)
        self.ok("POST", f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})

    def dossier(self, code: str, user: str = "citizen") -> dict[str, Any]:
        return dict(self.ok("GET", f"/api/v1/dossiers/{code}", user))

    def status(self, code: str, user: str = "citizen") -> int:
        return int(self.dossier(code, user)["status"]["code"])


def seed(db_url: str, users: Users, password: str) -> None:
    """Deploy the bundled BPMN, load the catalogue and create ``users`` (cheap argon2 parameters)."""
    settings = Settings(database_url=db_url, scheduler=False)
    engine = build_engine(settings)
    engine.deploy(bundled_bpmn(settings.workflows_dir), deployed_by="seed")
    build_dossiers(engine, settings).seed_catalogue(settings.workflows_dir)
    accounts = Accounts(engine.store, engine.clock, hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    for name, (role, agency, full_name) in users.items():
        accounts.create_user(name, password, roles={role}, full_name=full_name, agency_code=agency)
    engine.store.engine.dispose()


@contextmanager
def running_server(db_url: str, log_dir: Path, users: Users, password: str) -> Iterator[LiveServer]:
    """Seed the database and serve it on a free port until the block ends."""
    port = free_port()
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
    seed(db_url, users, password)
    log_path = log_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "motcua.cli", "serve", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers are stopped with it
        )
    server = LiveServer(base, log_path, db_url, password)
    try:
        _wait_healthy(base, process, log_path)
        yield server
    finally:
        # Nothing is in flight any more and the database is thrown away: the server's quick shutdown, and the
        # whole process group killed if it takes longer than a moment.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"motcua serve exited:\n{log_path.read_text()}")
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or a worker still booting under load
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"motcua serve did not become healthy:\n{log_path.read_text()}")
