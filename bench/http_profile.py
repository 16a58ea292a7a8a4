"""Where the time of one task completion over HTTP goes: SQL statements per request and cProfile's top.

Run through ``bench/http_load.py --profile N`` (it resets and seeds the database first)::

    .venv/bin/python bench/http_load.py --profile 200

The Flask app runs in this process (``create_app`` as a server worker builds it, same database), driven
by its test client with the task page's requests: ``GET /api/v1/tasks/{id}``, ``POST .../claim``,
``POST .../complete`` with ``If-Match``.  It prints the statements each request kind sends (SQLAlchemy's
and the engine's direct driver calls, counted at the psycopg cursor, and the writes the engine queues
straight to libpq), the median time of each request without the profiler, and the profiler's top
functions of the completion requests (cumulative and own time).  The profiler slows Python code down,
not the database: use its shares, not its totals.
"""

from __future__ import annotations

import cProfile
import io
import itertools
import json
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench._http import cpu_of
from bench.http_load import PROCEDURE, REVIEW, SUBMISSION, database_backends


@contextmanager
def counting_statements() -> Iterator[list[str]]:
    """Collect the first line of every statement a psycopg cursor executes or the engine queues meanwhile."""
    import psycopg

    seen: list[str] = []
    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        raw = query if isinstance(query, str) else getattr(query, "as_string", lambda _c: str(query))(self)
        seen.append(" ".join(str(raw).split())[:100])
        return original(self, query, *args, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    # Writes queued straight to libpq (engine/pipeline_writes.py) bypass the cursor: counted where queued.
    from engine import fast_sql, hot_sql

    queued = {module: module.queue_write for module in (fast_sql, hot_sql)}

    def counted(queue: Any) -> Any:
        def queue_write(raw: Any, sql: bytes, rows: Any, *args: Any) -> None:
            seen.extend(["(queued) " + " ".join(sql.decode().split())[:91]] * len(rows))
            queue(raw, sql, rows, *args)

        return queue_write

    for module, queue in queued.items():
        module.queue_write = counted(queue)  # type: ignore[attr-defined]
    try:
        yield seen
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]
        for module, queue in queued.items():
            module.queue_write = queue  # type: ignore[attr-defined]


def profile_completion(url: str, passwords: dict[str, str], count: int, *, cold: bool = False) -> None:
    """Complete ``count`` reception reviews in-process and print statements, timings and the profile.

    ``cold``: empty the engine's instance cache before each task page, as when another server worker
    served the dossier's previous step (the usual case with several workers): each completion then
    loads its instance from the database.
    """
    os.environ["MOTCUA_DATABASE_URL"] = url
    os.environ["MOTCUA_SCHEDULER"] = "off"
    from api import create_app
    from motcua.settings import Settings

    app = create_app(Settings.from_env())
    client = app.test_client()

    def login(user: str) -> dict[str, str]:
        answer = client.post("/api/v1/auth/token", json={"username": user, "password": passwords[user]})
        return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}

    applicant, official = login("demo.applicant"), login("demo.reception")
    warm = 10
    tasks = []
    for n in range(count + warm + 1):
        headers = {**applicant, "Content-Type": "application/json", "Idempotency-Key": f"profile-{n}"}
        answer = client.post("/api/v1/dossiers", data=SUBMISSION, headers=headers)
        assert answer.status_code == 201, answer.get_json()
        tasks.append(answer.get_json()["tasks"][0]["id"])

    backends = [0]

    def cpu() -> tuple[float, float, float]:
        """(wall, this thread's CPU, this database's PostgreSQL backends' CPU) in seconds."""
        pids = backends if backends[0] else database_backends(url.rsplit("/", 1)[1])
        return time.perf_counter(), time.thread_time(), cpu_of(pids)

    instances = app.extensions["motcua.engine"].instances

    def page(task_id: str, profiler: cProfile.Profile | None = None) -> list[tuple[float, float, float]]:
        path = f"/api/v1/tasks/{task_id}"
        if cold:
            instances.clear()
        marks = [cpu()]
        got = client.get(path, headers=official)
        marks.append(cpu())
        claim = client.post(f"{path}/claim", headers=official)
        marks.append(cpu())
        headers = {**official, "Content-Type": "application/json", "If-Match": got.headers["ETag"]}
        if profiler:
            profiler.enable()
        done = client.post(f"{path}/complete", data=REVIEW, headers=headers)
        if profiler:
            profiler.disable()
        marks.append(cpu())
        assert (got.status_code, claim.status_code, done.status_code) == (200, 200, 200), done.get_json()
        return [(b[0] - a[0], b[1] - a[1], b[2] - a[2]) for a, b in itertools.pairwise(marks)]

    for task_id in tasks[:warm]:
        page(task_id)
    if cold:
        instances.clear()
    _print_statements(client, official, tasks[warm])
    rest = tasks[warm + 1 :]
    backends[:] = database_backends(url.rsplit("/", 1)[1])  # the pool's connections, now all open
    timings = [page(t) for t in rest[: count // 2]]
    cache = "an empty instance cache (--cold)" if cold else "the instances cached since their submission"
    _print_timings(f"{len(timings)} task pages without the profiler, from {cache}", timings)
    profiler = cProfile.Profile()
    profiled = [page(t, profiler) for t in rest[count // 2 :]]
    _print_profile(profiler, len(profiled))


def _print_timings(title: str, timings: list[list[tuple[float, float, float]]]) -> None:
    print(f"\nprocedure {PROCEDURE}, {title}:")
    print("  request   wall p50 ms   app CPU ms   PostgreSQL CPU ms (means)")
    for n, label in enumerate(("GET task", "claim", "complete")):
        wall = statistics.median(t[n][0] for t in timings) * 1000
        app_cpu = statistics.fmean(t[n][1] for t in timings) * 1000
        db_cpu = statistics.fmean(t[n][2] for t in timings) * 1000
        print(f"  {label:<9}{wall:12.2f}{app_cpu:13.2f}{db_cpu:16.2f}")


def _print_profile(profiler: cProfile.Profile, completions: int) -> None:
    calls = pstats.Stats(profiler).total_calls  # type: ignore[attr-defined]
    print(f"\nPython function calls per completion (load-independent): {calls / completions:.0f}")
    dump = Path(tempfile.gettempdir()) / "motcua-http-complete.pstats"
    profiler.dump_stats(dump)
    print(f"\ncProfile of {completions} POST /api/v1/tasks/{{id}}/complete (saved to {dump}):")
    for order, lines in (("cumulative", 40), ("tottime", 25)):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(lines)
        text = out.getvalue()
        print(text[text.find("   ncalls") :].replace(os.getcwd() + "/", ""))


def _print_statements(client: Any, official: dict[str, str], task_id: str) -> None:
    path = f"/api/v1/tasks/{task_id}"
    with counting_statements() as seen:
        got = client.get(path, headers=official)
    print(f"\nGET {path}: {len(seen)} statements")
    print("\n".join(f"    {s}" for s in seen))
    with counting_statements() as seen:
        client.post(f"{path}/claim", headers=official)
    print(f"POST .../claim: {len(seen)} statements")
    print("\n".join(f"    {s}" for s in seen))
    headers = {**official, "Content-Type": "application/json", "If-Match": got.headers["ETag"]}
    with counting_statements() as seen:
        done = client.post(f"{path}/complete", data=REVIEW, headers=headers)
    print(f"POST .../complete: {len(seen)} statements ({done.status_code})")
    print("\n".join(f"    {s}" for s in seen))
    print(json.dumps(done.get_json(), ensure_ascii=False)[:200])
