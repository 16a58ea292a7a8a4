"""Timer lag and scheduler tick cost with 10,000 and 100,000 pending timers in PostgreSQL.

For each size, in one run:

1. seed that many pending timers (real instances of ``timer_wait``, copied in bulk, due in 1-30 days);
2. time one scheduler tick (the claim statement of ``fire_due_timers``) with nothing due and with 50 due,
   against a full scan of the pending timers (what a scheduler that reads every pending timer pays), and
   print the tick's query plan (``EXPLAIN ANALYZE``), which must walk the ``(kind, due_at)`` index only;
3. run real ``motcua worker`` processes (default tick, 1 s) and measure the lag between due time and
   firing (from the ``timer_fired`` audit entries) for a burst scheduled ahead (``--due`` timers due
   within 3 s), for a steady stream scheduled ahead (10 per second), and for timers added while the
   workers sleep (each due 0.2 s after it is created).

    .venv/bin/python bench/timer_lag.py
    .venv/bin/python bench/timer_lag.py --sizes 10000 100000 --due 1000 --workers 2 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The database is a fresh schema ``bench_timer_lag`` of the given database, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from engine.facade import Engine  # noqa: E402
from engine.runtime import SystemClock  # noqa: E402
from engine.store import Store, create_db_engine  # noqa: E402
from engine.tables import instances  # noqa: E402
from engine.wakeup_sql import claim_statement  # noqa: E402
from handlers import default_registry  # noqa: E402
from motcua.schema import upgrade  # noqa: E402

SCHEMA = "bench_timer_lag"
BPMN = ROOT / "tests" / "data" / "engine" / "timer_wait.bpmn"


def fresh_schema(base_url: str) -> str:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    admin.dispose()
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{SCHEMA}"
    upgrade(create_db_engine(url))
    return url


def drop_schema(base_url: str) -> None:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


def make_engine(url: str) -> Engine:
    registry = default_registry()
    store = Store(create_db_engine(url))
    return Engine(store, dispatcher=registry.dispatch, known_operators=list(registry), clock=SystemClock())


def seed_pending(engine: Engine, total: int) -> None:
    """Bring the pending timers to ``total``: copies of one real waiting instance, due in 1 to 30 days."""
    template = engine.start("timer_wait", {"fire_at": (SystemClock().now() + timedelta(days=40)).isoformat()})
    columns = [c.name for c in instances.c if c.name != "id"]
    with engine.store.unit_of_work() as uow:
        have = int(uow.conn.execute(text("SELECT count(*) FROM timers")).scalar_one())
        missing = total - have
        if missing <= 0:
            return
        uow.conn.execute(
            text(
                f"INSERT INTO instances (id, {', '.join(columns)}) "
                f"SELECT gen_random_uuid()::text, {', '.join(columns)} "
                "FROM instances, generate_series(1, :n) WHERE id = :template"
            ),
            {"n": missing, "template": template["id"]},
        )
        uow.conn.execute(
            text(
                "INSERT INTO timers (task_id, instance_id, element_id, kind, due_at) "
                "SELECT gen_random_uuid()::text, i.id, 'wait', 'timer', "
                "now() + interval '1 day' + random() * interval '29 days' "
                "FROM instances i LEFT JOIN timers t ON t.instance_id = i.id "
                "WHERE t.task_id IS NULL AND i.completed_at IS NULL"  # not those an earlier size fired
            )
        )
    with engine.store.engine.connect() as conn:
        conn.execute(text("ANALYZE timers"))
        conn.commit()


def schedule(engine: Engine, count: int, at: datetime, spread: float) -> None:
    step = spread / max(count - 1, 1)
    for i in range(count):
        engine.start("timer_wait", {"fire_at": (at + timedelta(seconds=i * step)).isoformat()})


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def tick_cost(engine: Engine, reps: int) -> tuple[float, float, str]:
    """Median time of an empty tick (claim with nothing due), a full scan, and the tick's plan."""
    statement = claim_statement(kind="timer", limit=50)
    now = SystemClock().now()
    params = {"now": now, "worker": "bench", "lease_until": now + timedelta(seconds=30)}
    ticks, scans = [], []
    with engine.store.engine.connect() as conn:
        for _ in range(reps):
            began = time.perf_counter()
            with conn.begin():
                conn.execute(statement, params).all()
            ticks.append(time.perf_counter() - began)
            began = time.perf_counter()
            with conn.begin():
                conn.execute(
                    text("SELECT task_id, instance_id, due_at FROM timers WHERE kind = 'timer'")
                ).all()
            scans.append(time.perf_counter() - began)
        compiled = statement.compile(conn)
        sql = str(compiled)
        values = {**compiled.params, **params}
        with conn.begin() as transaction:
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", values).all()
            transaction.rollback()
    return statistics.median(ticks), statistics.median(scans), "\n".join(f"    {row[0]}" for row in plan)


def start_workers(url: str, count: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "MOTCUA_DATABASE_URL": url}
    procs = []
    for i in range(count):
        log = (log_dir / f"worker{i}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "motcua.cli",
            "worker",
            "--jobs",
            "fire_timers",
            "--worker-id",
            f"bench{i}",
        ]
        procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=30)


def lags_since(engine: Engine, since: datetime) -> list[float]:
    with engine.store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT details FROM audit WHERE action = 'timer_fired' AND at >= :since"), {"since": since}
        ).all()
    return sorted(float(json.loads(row[0])["lag_seconds"]) for row in rows)


def wait_fired(engine: Engine, since: datetime, count: int, timeout: float) -> list[float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lags = lags_since(engine, since)
        if len(lags) >= count:
            return lags
        time.sleep(0.5)
    raise SystemExit(f"only {len(lags_since(engine, since))} of {count} timers fired within {timeout} s")


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--due", type=int, default=1000, help="timers due together, per size")
    parser.add_argument("--steady", type=int, default=200, help="timers due 10 per second, scheduled ahead")
    parser.add_argument("--late", type=int, default=100, help="timers added while the workers run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the bench schema")
    args = parser.parse_args()

    url = fresh_schema(args.database_url)
    engine = make_engine(url)
    engine.deploy([(BPMN.name, BPMN.read_bytes())])
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "motcua-timer-lag"
    log_dir.mkdir(exist_ok=True)
    print(
        f"PostgreSQL {args.database_url}, {args.workers} worker processes, tick 1 s, {os.cpu_count()} cores"
    )
    try:
        for size in sorted(args.sizes):
            began = time.perf_counter()
            seed_pending(engine, size)
            print(f"\n== {size:,} pending timers (seeded in {time.perf_counter() - began:.1f} s)")
            tick, scan, plan = tick_cost(engine, args.reps)
            print(f"empty tick (claim statement, nothing due): {ms(tick)} median of {args.reps}")
            print(
                f"full scan of pending timers (reference):   {ms(scan)}  -> tick/scan ratio {tick / scan:.4f}"
            )
            print("tick query plan:\n" + plan)

            at = SystemClock().now() + timedelta(seconds=8)
            schedule(engine, args.due, at, spread=3.0)
            steady_at = at + timedelta(seconds=15)
            schedule(engine, args.steady, steady_at, spread=args.steady / 10)
            if SystemClock().now() >= at:
                raise SystemExit("scheduling took longer than the lead time; lower --due")
            workers = start_workers(url, args.workers, log_dir)
            try:
                lags = wait_fired(engine, at - timedelta(seconds=1), args.due, timeout=120)
                print(
                    f"burst: {args.due} timers due within 3 s: lag p50 {ms(quantile(lags, 0.5))}, "
                    f"p99 {ms(quantile(lags, 0.99))}, max {ms(lags[-1])} "
                    f"(drained at {args.due / (3.0 + lags[-1]):.0f} timers/s)"
                )
                everything = wait_fired(
                    engine, at - timedelta(seconds=1), args.due + args.steady, timeout=120
                )
                steady = lags_since(engine, steady_at - timedelta(seconds=0.5))
                print(
                    f"steady: {len(steady)} timers due 10 per second: lag p50 {ms(quantile(steady, 0.5))}, "
                    f"p99 {ms(quantile(steady, 0.99))}, max {ms(steady[-1])} ({len(everything)} fired in all)"
                )
                late_since = SystemClock().now()
                for _ in range(args.late):
                    due = SystemClock().now() + timedelta(seconds=0.2)
                    engine.start("timer_wait", {"fire_at": due.isoformat()})
                    time.sleep(0.03)
                late = wait_fired(engine, late_since, args.late, timeout=60)
                print(
                    f"{args.late} timers added while the workers run (due 0.2 s later): lag p50 "
                    f"{ms(quantile(late, 0.5))}, p99 {ms(quantile(late, 0.99))}, max {ms(late[-1])}"
                )
            finally:
                stop_workers(workers)
            with engine.store.engine.connect() as conn:
                pending = conn.execute(text("SELECT count(*) FROM timers")).scalar_one()
            print(f"pending after the run: {pending:,} (the seeded ones, untouched)")
    finally:
        engine.store.engine.dispose()
        if not args.keep:
            drop_schema(args.database_url)


if __name__ == "__main__":
    started = datetime.now(UTC)
    main()
    print(f"\n(run took {(datetime.now(UTC) - started).total_seconds():.0f} s)")
