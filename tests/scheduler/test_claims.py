"""Wake-ups are claimed with leases and fired in the instance's own transaction: once, whatever happens.

Runs on a real SQLite file and on the real PostgreSQL (``db_url``), with the engine's clock under the
test's control so that leases can run out without waiting.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import tables as t
from engine.errors import ValidationError
from engine.runtime import SystemClock
from motcua.scheduler import Faults, Scheduler
from motcua.settings import Settings
from tests.engine.conftest import bpmn_file


def _waiting(engine, count, due):
    engine.deploy([bpmn_file("timer_wait.bpmn")])
    return [engine.start("timer_wait", {"fire_at": due.isoformat()})["id"] for _ in range(count)]


def _fired_per_instance(engine):
    with engine.store.unit_of_work(write=False) as uow:
        rows = uow.conn.execute(
            select(t.audit.c.instance_id, func.count())
            .where(t.audit.c.action == "timer_fired")
            .group_by(t.audit.c.instance_id)
        ).all()
    return dict(rows)


def _pending(engine):
    with engine.store.unit_of_work(write=False) as uow:
        return uow.count("timers")


def test_a_claim_hides_the_timer_until_its_lease_runs_out_then_it_fires_once(make_engine, clock):
    engine = make_engine()
    ids = _waiting(engine, 3, clock.now() + timedelta(seconds=10))
    clock.advance(seconds=11)
    # A worker claims the three timers and dies before firing any of them.
    with engine.store.unit_of_work() as uow:
        claimed = uow.claim_due_timers(
            clock.now(), worker="dead", lease_until=clock.now() + timedelta(seconds=30)
        )
    assert sorted(row["instance_id"] for row in claimed) == sorted(ids)
    assert make_engine().fire_due_timers(worker="other") == []
    clock.advance(seconds=31)
    fired = make_engine().fire_due_timers(worker="other")
    assert [row["outcome"] for row in fired] == ["fired"] * 3
    assert _fired_per_instance(engine) == dict.fromkeys(ids, 1)
    for instance_id in ids:
        view = make_engine().show(instance_id)
        assert view["status"] == "completed" and view["data"]["woken"] is True
    assert _pending(engine) == 0
    assert make_engine().fire_due_timers(now=clock.now() + timedelta(days=1)) == []


def test_a_worker_that_lost_its_claim_does_not_fire_again(make_engine, clock):
    first, second = make_engine(), make_engine()
    ids = _waiting(first, 4, clock.now() + timedelta(seconds=5))
    clock.advance(seconds=6)
    seen: list[str] = []

    def stall(rows):
        # The first worker stalls past its lease; the second takes the timers over and fires them.
        clock.advance(seconds=31)
        seen.extend(r["outcome"] for r in second.fire_due_timers(worker="second", lease_seconds=30))

    late = first.fire_due_timers(worker="first", lease_seconds=30, on_claimed=stall)
    assert seen == ["fired"] * 4
    assert len(late) == 4 and all(r["outcome"].startswith("skipped") for r in late)
    assert _fired_per_instance(first) == dict.fromkeys(ids, 1)


def test_timers_not_yet_due_are_not_claimed_and_the_earliest_come_first(make_engine, clock):
    engine = make_engine()
    early = _waiting(engine, 2, clock.now() + timedelta(seconds=5))
    later = [engine.start("timer_wait", {"fire_at": (clock.now() + timedelta(hours=1)).isoformat()})["id"]]
    clock.advance(seconds=6)
    fired = engine.fire_due_timers(limit=1, worker="w")
    assert [r["instance_id"] for r in fired] in ([early[0]], [early[1]])
    fired += engine.fire_due_timers(worker="w")
    assert sorted(r["instance_id"] for r in fired) == sorted(early)
    with engine.store.unit_of_work(write=False) as uow:
        assert [row.instance_id for row in uow.timers_of(later[0])] == later
        assert uow.next_due("timer") == clock.now() - timedelta(seconds=6) + timedelta(hours=1)


@pytest.mark.parametrize("workers", [4])
def test_concurrent_workers_fire_each_timer_exactly_once(make_engine, clock, workers):
    engines = [make_engine() for _ in range(workers)]
    ids = _waiting(engines[0], 60, clock.now() + timedelta(seconds=1))
    clock.advance(seconds=2)
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(workers)

    def work(engine, name):
        barrier.wait()
        for _ in range(100):
            results = engine.fire_due_timers(worker=name, limit=7)
            with lock:
                outcomes.extend(r["outcome"].split(":")[0] for r in results)
            if not results:
                return

    threads = [threading.Thread(target=work, args=(e, f"w{i}")) for i, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(outcomes)
    assert counts["fired"] == 60
    assert _fired_per_instance(engines[0]) == dict.fromkeys(ids, 1)
    assert _pending(engines[0]) == 0


def test_a_wake_up_that_fails_outside_any_task_is_retried_after_the_lease(make_engine, clock):
    from engine.errors import MotcuaError

    engine = make_engine()
    [instance_id] = _waiting(engine, 1, clock.now() + timedelta(seconds=1))
    broken = {"on": True}

    def refuse(_conn, change):
        if broken["on"] and change.instance_id == instance_id and not change.created:
            raise MotcuaError("the dossier service is down")

    engine.add_listener(refuse)
    clock.advance(seconds=2)
    [result] = engine.fire_due_timers(worker="w", lease_seconds=30)
    assert result["outcome"] == "failed: the dossier service is down"
    assert engine.fire_due_timers(worker="w") == []  # not hammered every tick
    broken["on"] = False
    clock.advance(seconds=31)
    [result] = engine.fire_due_timers(worker="w")
    assert result["outcome"] == "fired"
    assert _fired_per_instance(engine) == {instance_id: 1}


def test_stale_task_claims_go_back_to_the_queue(make_engine, clock):
    engine = make_engine()
    engine.deploy([bpmn_file("boundary_timer.bpmn")])
    view = engine.start("deadline_test", {})
    task_id = view["tasks"][0]["id"]
    engine.claim_task(task_id, "chuyenvien1")
    clock.advance(hours=7)
    assert engine.release_stale_claims(timedelta(hours=8)) == []
    clock.advance(hours=2)
    [released] = engine.release_stale_claims(timedelta(hours=8))
    assert released["task_id"] == task_id and released["claimed_by"] == "chuyenvien1"
    with engine.store.unit_of_work(write=False) as uow:
        assert uow.claim_of(task_id) is None
        actions = [row.action for row in uow.audit_of(view["id"])]
    assert actions[-1] == "claim_released"
    assert engine.release_stale_claims(timedelta(hours=8)) == []


def _settings(db_url, **overrides):
    return Settings(database_url=db_url, **overrides)


def test_scheduler_jobs_record_their_runs(make_engine, clock, db_url):
    engine = make_engine()
    ids = _waiting(engine, 3, clock.now() + timedelta(seconds=1))
    clock.advance(seconds=3)
    scheduler = Scheduler(
        engine,
        None,
        _settings(db_url, scheduler_tick=0.05),
        worker="w-test",
        jobs=["fire_timers", "release_claims"],
    )
    outcome = scheduler.run_job("fire_timers")
    assert outcome.items == 3 and outcome.detail["fired"] == 3
    assert all(abs(lag - 2.0) < 0.5 for lag in outcome.lags)
    assert _fired_per_instance(engine) == dict.fromkeys(ids, 1)
    scheduler.run_job("fire_timers")  # nothing due: counted, and recorded once (first run of the worker)
    with engine.store.unit_of_work(write=False) as uow:
        row = uow.conn.execute(select(t.job_runs).where(t.job_runs.c.job == "fire_timers")).one()
    assert (row.worker, row.runs, row.items, row.failures, row.last_items) == ("w-test", 1, 3, 0, 3)
    assert row.max_lag_ms >= row.last_lag_ms > 1000


def test_unknown_jobs_and_faults_are_refused(make_engine, db_url):
    with pytest.raises(ValidationError) as refused:
        Scheduler(make_engine(), None, _settings(db_url), jobs=["fire_timers", "send_spam"])
    assert "send_spam" in refused.value.message
    with pytest.raises(ValidationError):
        Faults("explode=3")
    assert Faults("kill_after_claims=5").kill_after_claims == 5


def test_a_timer_added_while_the_scheduler_runs_fires_within_a_tick(make_engine, db_url):
    import time

    engine = make_engine(clock=SystemClock())
    engine.deploy([bpmn_file("timer_wait.bpmn")])
    scheduler = Scheduler(engine, None, _settings(db_url, scheduler_tick=0.3), jobs=["fire_timers"])
    scheduler.start()
    try:
        time.sleep(0.5)  # the worker is idle, between looks
        due = SystemClock().now() + timedelta(seconds=0.4)
        instance_id = engine.start("timer_wait", {"fire_at": due.isoformat()})["id"]
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline
            and make_engine(clock=SystemClock()).show(instance_id)["status"] != "completed"
        ):
            time.sleep(0.05)
        fired_at = SystemClock().now()
    finally:
        scheduler.stop()
    assert make_engine().show(instance_id)["status"] == "completed"
    assert fired_at - due < timedelta(seconds=1.5)
    assert _fired_per_instance(engine) == {instance_id: 1}


def test_each_round_of_a_cycle_timer_fires_once_even_for_a_worker_that_lost_its_lease(make_engine, clock):
    from tests.engine.test_timer_expressions import timer_process

    first, second = make_engine(), make_engine()
    first.deploy([timer_process("timeCycle", "R3/PT1H", key="cycle_test")])
    view = first.start("cycle_test", {})
    late: list[dict] = []

    def stall(rows):
        # The first worker stalls past its lease: the second fires this round, then the first wakes up.
        clock.advance(seconds=31)
        assert [r["outcome"] for r in second.fire_due_timers(worker="second")] == ["fired"]

    clock.advance(hours=1, seconds=1)
    late = first.fire_due_timers(worker="first", on_claimed=stall)
    assert [r["outcome"].split(":")[0] for r in late] == ["skipped"]
    for _ in range(2):
        clock.advance(hours=1)
        assert [r["outcome"] for r in make_engine().fire_due_timers(worker="w")] == ["fired"]
    clock.advance(hours=5)
    assert make_engine().fire_due_timers(worker="w") == []
    reminders = [t for t in make_engine().show(view["id"])["tasks"] if t["element_id"] == "remind"]
    assert len(reminders) == 3
    assert _fired_per_instance(first) == {view["id"]: 3}


def test_the_next_claimable_wake_up_leaves_out_those_another_worker_holds(make_engine, clock):
    engine = make_engine()
    ids = _waiting(engine, 2, clock.now() + timedelta(seconds=5))
    clock.advance(seconds=6)
    with engine.store.unit_of_work() as uow:
        [held] = uow.claim_due_timers(
            clock.now(), worker="other", lease_until=clock.now() + timedelta(seconds=30), limit=1
        )
    with engine.store.unit_of_work(write=False) as uow:
        everything = uow.next_due("timer")
        claimable = uow.next_due("timer", now=clock.now())
        [free] = [row for i in ids for row in uow.timers_of(i) if row.task_id != held["task_id"]]
    assert everything == min(held["due_at"], free.due_at)
    assert claimable == free.due_at  # the held one is the other worker's
    clock.advance(seconds=31)  # its lease ran out: claimable again
    with engine.store.unit_of_work(write=False) as uow:
        assert uow.next_due("timer", now=clock.now()) == everything
