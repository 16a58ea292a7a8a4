"""Real ``motcua worker`` processes sharing one database: every timer fires exactly once, also after SIGKILL.

The workers are separate operating-system processes started from the CLI; they are killed with SIGKILL
(by an injected fault at an exact point, or from outside at an arbitrary moment) and restarted.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from engine import tables as t
from engine.facade import Engine
from engine.runtime import SystemClock
from engine.store import Store, create_db_engine
from handlers import default_registry
from tests.engine.conftest import bpmn_file

ROOT = Path(__file__).resolve().parents[2]


def _engine(url: str) -> Engine:
    registry = default_registry()
    return Engine(
        Store(create_db_engine(url)),
        dispatcher=registry.dispatch,
        known_operators=list(registry),
        clock=SystemClock(),
    )


def _schedule(engine: Engine, count: int, spread: float) -> tuple[list[str], datetime]:
    """Start ``count`` instances whose timers all fall due within ``spread`` s once the last one is started.

    The lead before the first due time allows 0.15 s per start: on this 2-core machine, with the browser tests
    running beside these, a start has been seen to take 0.11 s. Returns the ids and the first due time."""
    engine.deploy([bpmn_file("timer_wait.bpmn")])
    base = SystemClock().now() + timedelta(seconds=5 + 0.15 * count)
    rng = random.Random(5)
    ids = [
        engine.start(
            "timer_wait", {"fire_at": (base + timedelta(seconds=rng.uniform(0, spread))).isoformat()}
        )["id"]
        for _ in range(count)
    ]
    assert SystemClock().now() < base, "starting the instances took longer than the lead time"
    return ids, base


def _worker(url: str, name: str, tmp_path: Path, faults: str = "") -> subprocess.Popen[bytes]:
    env = {**os.environ, "MOTCUA_DATABASE_URL": url, "MOTCUA_FAULTS": faults}
    log = (tmp_path / f"{name}.log").open("ab")
    command = [
        sys.executable,
        "-m",
        "motcua.cli",
        "worker",
        "--worker-id",
        name,
        "--tick",
        "0.2",
        "--lease",
        "2",
    ]
    command += ["--jobs", "fire_timers,run_retries"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_until_fired(engine: Engine, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.store.unit_of_work(write=False) as uow:
            pending = uow.count("timers")
            fired = uow.conn.execute(
                select(func.count()).select_from(t.audit).where(t.audit.c.action == "timer_fired")
            ).scalar_one()
        if pending == 0 and fired >= count:
            return
        time.sleep(0.25)
    raise AssertionError(f"after {timeout} s: {pending} timers pending, {fired} of {count} fired")


def _assert_each_fired_once(engine: Engine, ids: list[str]) -> None:
    with engine.store.unit_of_work(write=False) as uow:
        per_instance = dict(
            uow.conn.execute(
                select(t.audit.c.instance_id, func.count())
                .where(t.audit.c.action == "timer_fired")
                .group_by(t.audit.c.instance_id)
            ).all()
        )
        statuses = dict(uow.conn.execute(select(t.instances.c.id, t.instances.c.status)).all())
    assert per_instance == dict.fromkeys(ids, 1)
    assert set(statuses.values()) == {"completed"}


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def test_four_workers_fire_200_timers_due_together_exactly_once(postgres_url, tmp_path):
    engine = _engine(postgres_url)
    workers = [_worker(postgres_url, f"w{i}", tmp_path) for i in range(4)]
    try:
        ids, _ = _schedule(engine, 200, spread=3)
        _wait_until_fired(engine, 200, timeout=60)
    finally:
        _stop(workers)
    assert [w.returncode for w in workers] == [0, 0, 0, 0]
    _assert_each_fired_once(engine, ids)
    logs = {w: (tmp_path / f"{w}.log").read_text() for w in ("w0", "w1", "w2", "w3")}
    busy = [name for name, text in logs.items() if "job fire_timers:" in text and "fired" in text]
    assert len(busy) >= 2, logs  # the work was shared, and each run that fired was logged
    with engine.store.unit_of_work(write=False) as uow:
        totals = uow.conn.execute(
            select(func.sum(t.job_runs.c["items"])).where(t.job_runs.c.job == "fire_timers")
        ).scalar_one()
    assert totals == 200


def test_workers_killed_mid_run_lose_no_timer_and_fire_none_twice(postgres_url, tmp_path):
    engine = _engine(postgres_url)
    # One dies right after claiming (its claims wait for the lease), one inside a firing's transaction.  The
    # four share the 160 timers (~40 each), so the counts that kill them are well below a fair share.
    doomed = [
        _worker(postgres_url, "claims", tmp_path, faults="kill_after_claims=20"),
        _worker(postgres_url, "commit", tmp_path, faults="kill_in_transaction=15"),
    ]
    healthy = [_worker(postgres_url, f"ok{i}", tmp_path) for i in range(2)]
    try:
        ids, due = _schedule(engine, 160, spread=3)
        time.sleep(max(0.0, (due - SystemClock().now()).total_seconds()) + 0.5)
        healthy[0].send_signal(signal.SIGKILL)  # and one killed from outside while the timers fire
        for worker in doomed:
            worker.wait(timeout=30)
        assert [w.returncode for w in doomed] == [-signal.SIGKILL, -signal.SIGKILL]
        healthy[0].wait(timeout=10)
        restarted = [_worker(postgres_url, f"again{i}", tmp_path) for i in range(2)]
        _wait_until_fired(engine, 160, timeout=60)
    finally:
        _stop(doomed + healthy + locals().get("restarted", []))
    _assert_each_fired_once(engine, ids)


def test_two_workers_on_one_sqlite_file_fire_each_timer_once_despite_a_kill(tmp_path):
    from motcua.schema import upgrade

    url = f"sqlite:///{tmp_path / 'workers.db'}"
    upgrade(create_db_engine(url))
    engine = _engine(url)
    workers = [_worker(url, "s0", tmp_path, faults="kill_in_transaction=10"), _worker(url, "s1", tmp_path)]
    try:
        ids, _ = _schedule(engine, 100, spread=2)
        workers[0].wait(timeout=30)
        assert workers[0].returncode == -signal.SIGKILL
        _wait_until_fired(engine, 100, timeout=60)
    finally:
        _stop(workers)
    _assert_each_fired_once(engine, ids)
