"""HTTP throughput and latency of the dossier and task endpoints under ``motcua serve`` on PostgreSQL.

One run, on this machine:

1. resets the database ``motcua_http`` (DROP ... WITH (FORCE), CREATE), migrates it and seeds it as
   ``motcua seed --demo`` does (bundled BPMN, procedure catalogue, calendar, demo users);
2. starts a real ``motcua serve --workers N`` (granian) on a port of 18100-18199 with
   ``MOTCUA_DATABASE_URL`` pointing at it; the background jobs (timers, retries, webhooks, deadlines)
   run where ``--jobs`` says: ``server`` (default) inside its workers, as ``motcua serve`` does alone;
   ``worker``: in a ``motcua worker`` process beside a server started with ``MOTCUA_SCHEDULER=off``, as
   ``docs/DEPLOY.md`` runs API nodes and worker nodes (its CPU is counted with the server's); ``none``;
3. logs in the demo applicant and the demo reception official (``POST /api/v1/auth/token``);
4. at each concurrency (default 1, 8 and 32 closed-loop clients on keep-alive connections, spread over
   forked client processes), measures in turn:
   - ``healthz``: ``GET /healthz`` (one ``SELECT 1``): the server + network floor, the reference;
   - ``submit``: ``POST /api/v1/dossiers`` as the applicant, JSON body with the declaration, level-3
     procedure 2.000815 (certified copy), with an ``Idempotency-Key`` as the submission page sends;
   - ``read``: ``GET /api/v1/dossiers/{code}`` of one of the applicant's dossiers;
   - ``queue``: ``GET /api/v1/tasks`` as the reception official (first page of the agency's queue);
   - ``task``: what the task page does with a reception review, each request timed on its own:
     ``GET /api/v1/tasks/{id}`` (its ETag), ``POST .../claim``, ``POST .../complete`` with
     ``If-Match`` and the reception form's decision ``accept`` (the dossier moves on to appraisal);
   enough dossiers are submitted beforehand (unmeasured) that the task scenario never runs dry, and the
   database is ANALYZEd before each concurrency (a fresh database has no statistics yet);
5. prints per scenario and concurrency: throughput (req/s), p50, p90, p99, max (ms), errors, the ratio of
   p50 and throughput to ``healthz`` at the same concurrency, and the CPU the clients, the server's
   processes and this database's PostgreSQL backends used per request; then the targets with PASS/FAIL:
   completing a task at 8 clients p50 < 15 ms and p99 < 60 ms.

The machine is shared: absolute figures move with whatever else runs (the report prints the machine's
CPU use in each phase that was not ours); the ratios to ``healthz`` move less.

    .venv/bin/python bench/http_load.py
    .venv/bin/python bench/http_load.py --workers 2 --threads 2 --clients 1 8 32 --requests 400
    .venv/bin/python bench/http_load.py --scenarios task --clients 8 --requests 600
    .venv/bin/python bench/http_load.py --profile 200      # in-process cProfile of task completion
    .venv/bin/python bench/http_load.py --profile 200 --cold   # each instance loaded from the database

``--profile N`` starts no server: it completes N reception tasks through the Flask app in this process
(same database, same requests as the task page), counts the SQL statements of each request kind and prints
cProfile's top functions of the completion request.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from bench._http import Connection, Phase, Sample, cpu_of, run_phase, summarise, timed  # noqa: E402
from bench.fault_test import motcua  # noqa: E402
from tests.dossiers.conftest import APPLICANT, COPY_FORM  # noqa: E402

DATABASE = "motcua_http"
SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
PROCEDURE = "2.000815"  # level 3, agency 000.01.01.H26 (the demo officials' agency)
SUBMISSION = json.dumps(
    {"procedure_code": PROCEDURE, "applicant": APPLICANT, "form_data": COPY_FORM}, ensure_ascii=False
).encode()
REVIEW = json.dumps({"data": {"decision": "accept"}}).encode()
SCENARIOS = ("healthz", "submit", "read", "queue", "task")
TARGETS = (("task.complete", 8, "p50", 15.0), ("task.complete", 8, "p99", 60.0))
HOST = "127.0.0.1"
JOBS_WHERE = {
    "server": "in the server's workers",
    "worker": "in a motcua worker process (server: MOTCUA_SCHEDULER=off)",
    "none": "none",
}


# -- machine and database ------------------------------------------------------------------------------
def machine_facts(server_url: str) -> dict[str, str]:
    """CPU, memory, Python and PostgreSQL of this machine."""
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as info:
        mem_kb = int(info.readline().split()[1])
    engine = create_engine(f"{server_url}/postgres")
    with engine.connect() as conn:
        pg = str(conn.execute(text("SHOW server_version")).scalar())
        commit = str(conn.execute(text("SHOW synchronous_commit")).scalar())
    engine.dispose()
    return {
        "cpus": f"{os.cpu_count()} x {model}",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgresql": f"{pg} (synchronous_commit={commit})",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def reset_database(server_url: str, name: str) -> str:
    """Drop and create the database ``name``; return its URL."""
    admin = create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server_url}/{name}"


def seed(env: dict[str, str]) -> dict[str, str]:
    """Migrate and seed like ``motcua db upgrade`` and ``motcua seed --demo``; return the demo passwords."""
    motcua(env, "db", "upgrade")
    seeded = motcua(env, "seed", "--demo")
    return {u["username"]: u["password"] for u in seeded["demo_users"] if u.get("password")}


# -- the server ----------------------------------------------------------------------------------------
class Server:
    """``motcua serve`` in its own process group, its output in a log file."""

    def __init__(self, env: dict[str, str], port: int, workers: int, log_dir: Path) -> None:
        self.port, self.workers = port, workers
        self.helpers: list[subprocess.Popen[bytes]] = []  # a motcua worker run beside it (``--jobs worker``)
        self.log_path = log_dir / "server.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "motcua.cli", "serve", "--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until every worker answers /healthz (each worker builds its app after forking)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server stopped: see {self.log_path}")
            try:
                conn = Connection(HOST, self.port, timeout=5)
                if conn.request("GET", "/healthz").status == 200 and len(self.worker_pids()) >= self.workers:
                    conn.close()
                    return
            except Exception:
                pass
            time.sleep(0.3)
        raise SystemExit(f"the server did not answer /healthz in {timeout:.0f} s: see {self.log_path}")

    def worker_pids(self) -> list[int]:
        """The server's worker processes (children of the master)."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return [int(c) for c in children]

    def pids(self) -> list[int]:
        """The master, its workers and the processes run beside it."""
        return [self.process.pid, *self.worker_pids(), *(h.pid for h in self.helpers)]

    def stop(self) -> None:
        """SIGTERM the server (granian stops its workers), SIGKILL it if it lingers."""
        for helper in self.helpers:
            helper.terminate()
            try:
                helper.wait(timeout=20)
            except subprocess.TimeoutExpired:
                helper.kill()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def database_backends(name: str) -> list[int]:
    """The PostgreSQL backend processes connected to database ``name`` (by their process title)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {name} " in title:
            found.append(int(entry.name))
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / tick, sum(values[:8]) / tick


class CpuMeter:
    """CPU seconds used by the server, by this database's PostgreSQL backends and by the whole machine."""

    def __init__(self, server: Server, database: str) -> None:
        self.server, self.database = server, database

    def snapshot(self) -> dict[str, Any]:
        backends = {pid: cpu_of([pid]) for pid in database_backends(self.database)}
        return {"server": cpu_of(self.server.pids()), "db": backends, "machine": machine_busy()}

    @staticmethod
    def used(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        db = sum(cpu - before["db"].get(pid, 0.0) for pid, cpu in after["db"].items())
        (busy0, total0), (busy1, total1) = before["machine"], after["machine"]
        return {
            "server": after["server"] - before["server"],
            "db": db,
            "machine": busy1 - busy0,
            "machine_capacity": total1 - total0,
        }


# -- scenarios -----------------------------------------------------------------------------------------
class Scenarios:
    """The operations each scenario's clients repeat, with the tokens and work items they need."""

    def __init__(self, applicant: str, official: str, run: str) -> None:
        self.applicant = {"Authorization": f"Bearer {applicant}"}
        self.official = {"Authorization": f"Bearer {official}"}
        self.run = run
        self.codes: list[str] = []
        self.tasks: list[str] = []

    def healthz(self, conn: Connection, _client: int, _op: int) -> list[Sample]:
        return [timed(conn, "healthz", "GET", "/healthz")[0]]

    def submit(self, conn: Connection, client: int, op: int) -> list[Sample]:
        headers = {
            **self.applicant,
            "Content-Type": "application/json",
            "Idempotency-Key": f"{self.run}-{client}-{op}-{uuid.uuid4().hex[:8]}",
        }
        return [timed(conn, "submit", "POST", "/api/v1/dossiers", body=SUBMISSION, headers=headers)[0]]

    def read(self, conn: Connection, client: int, op: int) -> list[Sample]:
        code = self.codes[(client * 7919 + op) % len(self.codes)]
        return [timed(conn, "read", "GET", f"/api/v1/dossiers/{code}", headers=self.applicant)[0]]

    def queue(self, conn: Connection, _client: int, _op: int) -> list[Sample]:
        return [timed(conn, "queue", "GET", "/api/v1/tasks", headers=self.official)[0]]

    def task_op(self, per_client: int) -> Callable[[Connection, int, int], list[Sample]]:
        """The task page's three requests on the client's own tasks (``per_client`` of them each)."""
        tasks = list(self.tasks)

        def task(conn: Connection, client: int, op: int) -> list[Sample]:
            task_id = tasks[client * per_client + op]
            path = f"/api/v1/tasks/{task_id}"
            got, answer = timed(conn, "task.get", "GET", path, headers=self.official)
            if got.status != 200:
                return [got]
            claimed, _ = timed(conn, "task.claim", "POST", f"{path}/claim", headers=self.official)
            headers = {
                **self.official,
                "Content-Type": "application/json",
                "If-Match": answer.headers["etag"],
            }
            done, _ = timed(conn, "task.complete", "POST", f"{path}/complete", body=REVIEW, headers=headers)
            return [got, claimed, done]

        return task


def analyze(url: str) -> None:
    """Refresh PostgreSQL's statistics: a database filled seconds ago may not have been auto-analyzed yet,
    and a plan chosen on empty-table statistics (the task queue's, seen at 100-200 ms of database CPU per
    request) would measure the planner's lag, not the service."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def fresh_reviews(url: str, used: set[str]) -> tuple[list[str], list[str]]:
    """The ready reception reviews nobody claimed, oldest first, and the codes of their dossiers."""
    engine = create_engine(url)
    query = text(
        "SELECT r.id, d.code FROM ready_tasks r JOIN dossiers d ON d.instance_id = r.instance_id "
        "LEFT JOIN task_claims c ON c.task_id = r.id "
        "WHERE r.element_id = 'review' AND r.lane = 'reception' AND c.task_id IS NULL "
        "ORDER BY r.created_at, r.id"
    )
    with engine.connect() as conn:
        rows = [(str(r.id), str(r.code)) for r in conn.execute(query) if str(r.id) not in used]
    engine.dispose()
    return [r[0] for r in rows], [r[1] for r in rows]


# -- running and reporting -----------------------------------------------------------------------------
def measure(
    name: str,
    op: Callable[[Connection, int, int], list[Sample]],
    meter: CpuMeter,
    args: argparse.Namespace,
    clients: int,
    per_client: int,
    warmup: int,
) -> tuple[Phase, dict[str, float]]:
    before = meter.snapshot()
    phase = run_phase(
        HOST,
        args.port,
        op,
        clients=clients,
        per_client=per_client,
        warmup=warmup,
        processes=args.client_processes,
        max_seconds=args.max_seconds,
    )
    used = meter.used(before, meter.snapshot())
    for failure in phase.failures[:5]:
        print(f"  ! {name} x{clients}: {failure}", flush=True)
    return phase, used


def top_up(scenarios: Scenarios, args: argparse.Namespace, url: str, needed: int, used: set[str]) -> int:
    """Submit dossiers (unmeasured, 8 clients) until ``needed`` fresh reception reviews wait."""
    tasks, codes = fresh_reviews(url, used)
    missing = needed - len(tasks)
    if missing > 0:
        print(f"  (submitting {missing} dossiers first, unmeasured)", flush=True)
        clients = min(8, missing)
        per_client = math.ceil(missing / clients)
        phase = run_phase(HOST, args.port, scenarios.submit, clients=clients, per_client=per_client)
        failed = sum(1 for s in phase.samples if s.status != 201)
        if failed:
            print(f"  ! {failed} of the top-up submissions failed", flush=True)
        tasks, codes = fresh_reviews(url, used)
        analyze(url)
    scenarios.tasks = tasks
    scenarios.codes = scenarios.codes or codes
    return len(tasks)


def row(
    label: str, clients: int, stats: dict[str, Any], cpu: dict[str, float], ref: dict[str, Any] | None
) -> dict[str, Any]:
    requests = max(cpu["requests"], 1)  # the phase's requests: CPU is measured per phase
    return {
        "scenario": label,
        "clients": clients,
        **stats,
        "p50_ratio": stats["p50"] / ref["p50"] if ref else math.nan,
        "rps_ratio": stats["rps"] / ref["rps"] if ref else math.nan,
        "client_cpu_ms": cpu["client"] * 1000 / requests,
        "server_cpu_ms": cpu["server"] * 1000 / requests,
        "db_cpu_ms": cpu["db"] * 1000 / requests,
        "other_cpu": cpu["other"],
    }


def run_load(args: argparse.Namespace, url: str, passwords: dict[str, str], log_dir: Path) -> list[dict]:
    env = {
        **os.environ,
        "MOTCUA_DATABASE_URL": url,
        **({"MOTCUA_THREADS": str(args.threads)} if args.threads else {}),
    }
    jobs = "none" if args.no_scheduler else args.jobs
    env["MOTCUA_SCHEDULER"] = "on" if jobs == "server" else "off"
    env["MOTCUA_ACCESS_LOG"] = "on" if args.access_log else "off"
    server = Server(env, args.port, args.workers, log_dir)
    if jobs == "worker":  # the jobs in a process of their own, as on a worker node
        server.helpers.append(
            subprocess.Popen(
                [sys.executable, "-m", "motcua.cli", "worker"],
                cwd=ROOT,
                env={**env, "MOTCUA_SCHEDULER": "on"},
                stdout=server.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    rows: list[dict] = []
    try:
        server.wait_ready()
        conn = Connection(HOST, args.port)
        tokens = {}
        for user in ("demo.applicant", "demo.reception"):
            body = json.dumps({"username": user, "password": passwords[user]}).encode()
            answer = conn.request(
                "POST", "/api/v1/auth/token", body=body, headers={"Content-Type": "application/json"}
            )
            if answer.status != 200:
                raise SystemExit(f"login of {user} failed: {answer.status} {answer.body[:200]!r}")
            tokens[user] = json.loads(answer.body)["access_token"]
        conn.close()
        scenarios = Scenarios(tokens["demo.applicant"], tokens["demo.reception"], uuid.uuid4().hex[:8])
        meter = CpuMeter(server, args.database)
        used: set[str] = set()
        top_up(scenarios, args, url, 50, used)
        print(
            f"server: motcua serve --workers {args.workers} "
            f"(granian, {env.get('MOTCUA_THREADS', '2')} threads each), "
            f"jobs: {JOBS_WHERE[jobs]}, access log "
            f"{'on' if args.access_log else 'off'}; {len(server.worker_pids())} workers up",
            flush=True,
        )
        for clients in args.clients:
            rows += run_concurrency(scenarios, meter, args, url, clients, used)
    finally:
        server.stop()
    return rows


def run_concurrency(
    scenarios: Scenarios,
    meter: CpuMeter,
    args: argparse.Namespace,
    url: str,
    clients: int,
    used: set[str],
) -> list[dict]:
    per_client = max(1, math.ceil(args.requests / clients))
    warmup = max(1, math.ceil(args.warmup / clients))
    rows: list[dict] = []
    ref = None
    analyze(url)
    for name in ("healthz", *[s for s in args.scenarios if s != "healthz"]):
        if name == "task":
            available = top_up(scenarios, args, url, clients * (warmup + per_client), used)
            op = scenarios.task_op(warmup + per_client)
            used.update(scenarios.tasks[: clients * (warmup + per_client)])
            extra = f" ({available} reviews waiting)"
        else:
            op, extra = getattr(scenarios, name), ""
            if name == "read":
                top_up(scenarios, args, url, 0, used)
        phase, cpu = measure(name, op, meter, args, clients, per_client, warmup)
        other = cpu["machine"] - cpu["server"] - cpu["db"] - phase.client_cpu
        share = {
            "requests": len(phase.samples),
            "client": phase.client_cpu,
            "server": cpu["server"],
            "db": cpu["db"],
            "other": other / phase.wall if phase.wall else math.nan,
        }
        labels = sorted({s.label for s in phase.samples}, key=_label_order)
        for label in labels:
            stats = summarise(phase.samples, phase.wall, label)
            if label == "healthz":
                ref = stats
            rows.append(row(label, clients, stats, share, ref))
            print(_line(rows[-1]) + extra, flush=True)
            extra = ""
    return rows


def _label_order(label: str) -> int:
    order = ["healthz", "submit", "read", "queue", "task.get", "task.claim", "task.complete"]
    return order.index(label) if label in order else len(order)


def _line(r: dict[str, Any]) -> str:
    errors = f"{r['errors']}" + (f" {r['error_statuses']}" if r["errors"] else "")
    return (
        f"{r['scenario']:<14}{r['clients']:>4}{r['requests']:>7}{r['rps']:>9.1f}{r['p50']:>8.1f}"
        f"{r['p90']:>8.1f}{r['p99']:>8.1f}{r['max']:>8.1f}  {errors:<7}{r['p50_ratio']:>7.1f}x"
        f"{r['rps_ratio']:>7.2f}x{r['client_cpu_ms']:>7.2f}{r['server_cpu_ms']:>7.2f}{r['db_cpu_ms']:>7.2f}"
        f"{r['other_cpu']:>7.2f}"
    )


HEADER = (
    f"{'scenario':<14}{'cl':>4}{'reqs':>7}{'req/s':>9}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}  "
    f"{'errors':<7}{'p50/hz':>8}{'rps/hz':>8}{'cliCPU':>7}{'srvCPU':>7}{'dbCPU':>7}{'other':>7}"
)
LEGEND = (
    "latencies in ms; p50/hz and rps/hz: p50 and throughput over those of GET /healthz at the same number\n"
    "of clients in this run; cliCPU, srvCPU, dbCPU: CPU ms per request of the load clients, the server\n"
    "processes and this database's PostgreSQL backends (the task page's three requests: their average);\n"
    "other: cores busy with something else during the phase (other users of this shared machine)."
)


def report_targets(rows: Sequence[dict[str, Any]]) -> bool:
    """Print each target with PASS/FAIL; return whether all measured targets passed."""
    print("\ntargets (PostgreSQL, this machine):")
    passed = True
    for label, clients, stat, limit in TARGETS:
        found = [r for r in rows if r["scenario"] == label and r["clients"] == clients]
        if not found:
            print(f"  {label} at {clients} clients {stat} < {limit:.0f} ms: not measured")
            continue
        value = found[0][stat]
        ok = value < limit and found[0]["errors"] == 0
        passed &= ok
        verdict = "PASS" if ok else "FAIL"
        print(f"  {label} at {clients} clients {stat} < {limit:.0f} ms: {value:.1f} ms  {verdict}")
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine_facts(args.server_url)
    print("machine:")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    url = reset_database(args.server_url, args.database)
    env = {**os.environ, "MOTCUA_DATABASE_URL": url}
    passwords = seed(env)
    print(f"database: {url} (reset, migrated, seeded with the demo users)", flush=True)
    if args.profile:
        from bench.http_profile import profile_completion

        profile_completion(url, passwords, args.profile, cold=args.cold)
        return 0
    with tempfile.TemporaryDirectory(prefix="motcua-http-") as log_dir:
        print(
            f"sizes: {args.requests} measured requests per scenario and concurrency (+{args.warmup} warm-up)"
        )
        print(HEADER, flush=True)
        rows = run_load(args, url, passwords, Path(log_dir))
    print(LEGEND)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report_targets(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": facts, "rows": rows}, indent=2, default=str))
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server-url", default=SERVER_URL, help="PostgreSQL server, without database")
    parser.add_argument("--database", default=DATABASE, help="database to reset and use")
    parser.add_argument("--port", type=int, default=18100)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--threads", type=int, help="threads per worker (default: MOTCUA_THREADS or 2)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=400, help="measured requests per phase")
    parser.add_argument("--warmup", type=int, default=16, help="unmeasured requests per phase")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--client-processes", type=int, default=2, help="processes the clients run in")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="time limit of one phase")
    parser.add_argument(
        "--jobs",
        choices=sorted(JOBS_WHERE),
        default="server",
        help="where the background jobs run: in the server's workers, in a motcua worker beside it, nowhere",
    )
    parser.add_argument("--no-scheduler", action="store_true", help="the same as --jobs none")
    parser.add_argument("--access-log", action="store_true", help="let the server write its access log")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N completions instead")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="with --profile: load each instance from the database, as when another worker served it last",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.cold and not args.profile:
        parser.error("--cold only applies to --profile N")
    return args


if __name__ == "__main__":
    sys.exit(main())
