"""``motcua serve`` runs the background jobs in its gunicorn workers, unless MOTCUA_SCHEDULER=off."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from engine.runtime import SystemClock
from engine.store import create_db_engine
from motcua.schema import upgrade
from tests.engine.conftest import bpmn_file
from tests.scheduler.test_workers import _engine

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(url: str, port: int, tmp_path: Path, scheduler: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MOTCUA_DATABASE_URL": url,
        "MOTCUA_SCHEDULER": scheduler,
        "MOTCUA_SCHEDULER_TICK": "0.2",
    }
    log = (tmp_path / f"serve-{scheduler}.log").open("wb")
    command = [sys.executable, "-m", "motcua.cli", "serve", "--port", str(port), "--workers", "2"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server did not start")


@pytest.mark.parametrize("scheduler", ["on", "off"])
def test_serve_fires_timers_only_when_its_scheduler_is_on(tmp_path, scheduler):
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade(create_db_engine(url))
    engine = _engine(url)
    engine.deploy([bpmn_file("timer_wait.bpmn")])
    port = _free_port()
    server = _serve(url, port, tmp_path, scheduler)
    try:
        _wait_listening(port)
        due = SystemClock().now() + timedelta(seconds=1)
        instance_id = engine.start("timer_wait", {"fire_at": due.isoformat()})["id"]
        deadline = time.monotonic() + (8 if scheduler == "on" else 3)  # off: 2 s past due is proof enough
        while time.monotonic() < deadline and _engine(url).show(instance_id)["status"] != "completed":
            time.sleep(0.2)
        status = _engine(url).show(instance_id)["status"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    log = (tmp_path / f"serve-{scheduler}.log").read_text()
    if scheduler == "on":
        assert status == "completed", log
        assert "job fire_timers: 1 fired" in log
    else:
        assert status == "running", log
    assert server.returncode == 0, log
