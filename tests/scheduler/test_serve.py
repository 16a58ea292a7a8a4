"""``motcua serve`` (granian): the background jobs run in its workers unless MOTCUA_SCHEDULER=off, a dead
worker is replaced, and the workers stop when their master dies."""

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
from typing import Any

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


def _workers(master: int) -> list[int]:
    try:
        return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def _until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def test_a_killed_worker_is_replaced_and_workers_stop_with_their_master(tmp_path):
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade(create_db_engine(url))
    port = _free_port()
    server = _serve(url, port, tmp_path, "off")
    try:
        _wait_listening(port)
        assert _until(lambda: len(_workers(server.pid)) == 2, 10)
        first, _ = _workers(server.pid)
        os.kill(first, signal.SIGKILL)  # mid-life, as the OOM killer would
        assert _until(lambda: len(set(_workers(server.pid)) - {first}) == 2, 15), _workers(server.pid)
        _wait_listening(port)
        workers = _workers(server.pid)
        server.kill()  # the master dies without stopping its workers: they notice and stop themselves
        server.wait(timeout=10)
        # Noticed within a second; a worker then has up to 10 s to finish what it serves (SIGTERM).
        assert _until(lambda: not any(_alive(pid) for pid in workers), 25), workers
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    log = (tmp_path / "serve-off.log").read_text()
    assert "Respawning worker" in log, log
