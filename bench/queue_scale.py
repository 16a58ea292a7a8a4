"""Task-queue and dossier-search latency with 1,000,000 dossiers (100,000 open) in PostgreSQL, with plans.

What it does, in one run:

1. makes sure the database exists (``CREATE DATABASE motcua_bench`` on 127.0.0.1:5432 unless
   ``--database-url`` names another), migrates it (``motcua.schema.upgrade``), deploys the bundled BPMN and
   loads the procedure catalogue as ``motcua seed`` does;
2. seeds the dossiers, unless ``--reuse`` finds the database already holding that many: first real dossiers
   through the real service (levels 3 and 4, one per procedure and stage: waiting for the applicant, at the
   desk, with a specialist, with a leader, awaiting the result hand-over, result returned, refused,
   withdrawn), then copies of them in bulk SQL (``INSERT ... SELECT`` over ``generate_series``) with new
   ids, codes, owners and dates: 20 receiving agencies of skewed sizes (Zipf, the largest with about 28%),
   the seeded procedures, submission dates over a year (open ones in the last 30 days), TrangThaiHoSo
   statuses as the process sets them, the instance state copied with its dossier code, task id and owner
   rewritten, a ready task per open dossier (lanes: ~18% applicant, ~34% reception, ~32% specialist, ~16%
   leader), 40% of the officials' tasks claimed, ~10% of the open dossiers overdue and ~7% due soon;
   then ``VACUUM ANALYZE`` (what autovacuum does after a bulk load);
3. measures p50/p95/p99/max over ``--reps`` repetitions (agencies, lanes and pages varied) of
   (a) the store functions the endpoints call (the SQL alone, in a read-only unit of work) and
   (b) the real Flask app in-process through its test client (``api.create_app`` on the bench database,
   bearer tokens of officials of the three largest agencies and of an applicant): auth, marshmallow and
   JSON included; with GET /healthz (the framework floor) and a primary-key lookup as references;
4. prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the statements behind the queue, the counts, the dossier list
   and the indicators, and the targets with PASS/FAIL (officials' queue page, counts and dossier list:
   p99 < 50 ms over HTTP).

    .venv/bin/python bench/queue_scale.py                 # seed 1,000,000 (100,000 open), then measure
    .venv/bin/python bench/queue_scale.py --reuse         # measure again on the seeded database
    .venv/bin/python bench/queue_scale.py --dossiers 100000 --open 10000 --reps 50   # a small run
    .venv/bin/python bench/queue_scale.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/other

Without ``--reuse`` the database is dropped and created again.  The seed of 1,000,000 dossiers took 22
minutes (1347 s) on the shared 2-core machine and makes a database of about 9.7 GB (the instance states are
real, ~22 kB each before compression).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sqlalchemy import Engine as SqlEngine  # noqa: E402
from sqlalchemy import create_engine, event, make_url, text  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

from dossiers import indicator_store, store  # noqa: E402
from dossiers.service import DossierService, Submission  # noqa: E402
from engine.facade import Engine  # noqa: E402
from motcua.bundle import bundled_bpmn  # noqa: E402
from motcua.schema import upgrade  # noqa: E402
from motcua.settings import Settings  # noqa: E402
from motcua.wiring import build_dossiers, build_engine  # noqa: E402
from tests.dossiers.conftest import APPLICANT, COPY_FORM, LLTP_FORM  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/motcua_bench"
TARGET_MS = 50.0
PASSWORD = "mật-khẩu-đo-hiệu-năng-2026"
APPLICANT_USER = "bench-congdan"

# The bundled procedures of level 3 and 4, with their share of dossiers and the procedure whose real
# dossiers serve as templates (the one our test forms fill; the other shares its BPMN and level).
PROCEDURES = [("2.000815", "2.000815", 0.45), ("2.000488", "2.000488", 0.25)]
PROCEDURES += [("2.000635", "2.000488", 0.20), ("1.000893", "2.000815", 0.10)]
# Where an open dossier stands (stage: share) and how a finished one ended.
OPEN_STAGES = {
    "information": 0.04,
    "submit_online": 0.06,
    "supplement": 0.08,
    "review": 0.22,
    "appraise": 0.32,
    "approve": 0.16,
    "result": 0.12,
}
FINISHED_STAGES = {"done": 0.86, "refused": 0.06, "withdrawn": 0.08}
AGENCIES = ["000.01.01.H26", "000.00.14.H26"] + [f"000.01.{k:02d}.H26" for k in range(2, 20)]
LANE_USERS = {"tiepnhan": ["reception"], "chuyenvien": ["specialist"], "lanhdao": ["leader"]}
LANE_USERS["canbo"] = ["reception", "specialist", "leader"]

FORMS: dict[str, dict[str, Any]] = {"2.000815": COPY_FORM, "2.000488": LLTP_FORM}
TEMPLATE_OWNER = "bench-template-owner"


# -- the database --------------------------------------------------------------------------------------
def ensure_database(url: str, *, fresh: bool) -> None:
    """Create the database of ``url`` if missing (dropped first when ``fresh``)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = target.database
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if exists and fresh:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            exists = None
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def seeded_size(engine: SqlEngine) -> tuple[int, int] | None:
    """The (dossiers, open) a previous seed recorded, or None."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('bench_seed')")).scalar() is None:
            return None
        row = conn.execute(text("SELECT total, open FROM bench_seed")).first()
    return (int(row.total), int(row.open)) if row else None


# -- templates: real dossiers through the real service --------------------------------------------------
class Driver:
    """Moves real dossiers through the service as applicants and officials do."""

    def __init__(self, service: DossierService) -> None:
        self.service = service

    def do(self, code: str, element_id: str, data: dict[str, Any] | None = None) -> None:
        [task] = [t for t in self.service.dossier(code)["tasks"] if t["element_id"] == element_id]
        self.service.complete_task(task["id"], data or {}, actor="bench")

    def dossier_at(self, procedure: str, stage: str) -> str:
        """Submit a dossier of ``procedure`` and move it to ``stage``; return its code."""
        level4 = procedure == "2.000488"
        submission = Submission(applicant=APPLICANT, delivery_method="desk" if level4 else None)
        code = str(self.service.submit(procedure, submission, owner=TEMPLATE_OWNER)["code"])
        if stage == "information":
            return code
        if stage == "withdrawn":
            self.service.withdraw(code, actor=TEMPLATE_OWNER)
            return code
        self.do(code, "information")
        steps: list[tuple[str, dict[str, Any]]] = [("submit_online", {"form_data": FORMS[procedure]})]
        if stage == "supplement":
            items = ["Bản sao thẻ căn cước có chứng thực"]
            steps.append(("review", {"decision": "supplement", "supplement_items": items}))
        elif stage == "refused":
            steps.append(("review", {"decision": "refuse", "refusal_reason": "Không thuộc thẩm quyền"}))
        elif stage != "submit_online":
            steps.append(("review", {"decision": "accept"}))
        for element_id, data in steps:
            if stage == element_id:
                return code
            self.do(code, element_id, data)
        if stage in ("supplement", "refused", "submit_online", "review"):
            return code
        if level4:
            self.service.engine.send_message(
                "payment.confirmed", {"dossier_code": code}, {"paid_amount": 200000}
            )
        return self._processing(code, stage, level4)

    def _processing(self, code: str, stage: str, level4: bool) -> str:
        if stage == "appraise":
            return code
        self.do(code, "appraise", {"appraisal_opinion": "Đủ điều kiện", "draft_result": "Kết quả"})
        if stage == "approve":
            return code
        self.do(code, "approve", {"approval": "approve", "approval_note": ""})
        if stage == "result":
            return code
        handover = {
            "fee_paid": True,
            "handed_over_to": "Nguyễn Thị Hương",
            "receiver_id_number": "001190012345",
        }
        self.do(code, "hand_over_result" if level4 else "desk_result", handover)
        return code


def make_templates(engine: Engine, service: DossierService) -> float:
    """Start one real dossier per template procedure and stage; record them in ``bench_templates``."""
    began = time.perf_counter()
    driver = Driver(service)
    rows = []
    for procedure in sorted({template for _, template, _ in PROCEDURES}):
        for stage in [*OPEN_STAGES, *FINISHED_STAGES]:
            code = driver.dossier_at(procedure, stage)
            dossier = service.dossier(code)
            tasks = dossier["tasks"]
            if (stage in OPEN_STAGES) != (len(tasks) == 1):
                raise SystemExit(f"template {procedure}/{stage}: unexpected tasks {tasks}")
            task_id = tasks[0]["id"] if tasks else None
            rows.append(
                {
                    "procedure_code": procedure,
                    "stage": stage,
                    "code": code,
                    "instance_id": dossier["instance_id"],
                    "task_id": task_id,
                }
            )
    with engine.store.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE bench_templates (procedure_code text, stage text, code text, "
                "instance_id text, task_id text)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO bench_templates VALUES (:procedure_code, :stage, :code, :instance_id, :task_id)"
            ),
            rows,
        )
    return time.perf_counter() - began


# -- the bulk copy --------------------------------------------------------------------------------------
def _ranges(weights: list[tuple[str, float]]) -> list[tuple[str, float, float]]:
    total = sum(w for _, w in weights)
    out, low = [], 0.0
    for name, weight in weights:
        out.append((name, low, low + weight / total))
        low += weight / total
    out[-1] = (out[-1][0], out[-1][1], 1.0000001)
    return out


PLAN_SQL = """
CREATE UNLOGGED TABLE bench_plan AS
WITH r AS (
    SELECT n, n <= :open AS is_open, random() AS ra, random() AS rp, random() AS rs, random() AS rt,
           random() AS rc, random() AS rd
    FROM generate_series(1, :total) n
), p AS (
    SELECT r.*, a.name AS agency_code, pr.name AS procedure_code, pr.template AS template_code,
           s.name AS stage,
           CASE WHEN r.is_open THEN now() - r.rt * interval '30 days'
                ELSE now() - interval '1 day' - r.rt * interval '364 days' END AS submitted_at
    FROM r
    JOIN bench_weights a ON a.kind = 'agency' AND r.ra >= a.lo AND r.ra < a.hi
    JOIN bench_weights pr ON pr.kind = 'procedure' AND r.rp >= pr.lo AND r.rp < pr.hi
    JOIN bench_weights s ON s.kind = CASE WHEN r.is_open THEN 'open' ELSE 'finished' END
         AND r.rs >= s.lo AND r.rs < s.hi
)
SELECT p.*,
       row_number() OVER (ORDER BY p.submitted_at, p.n) AS seq,
       p.agency_code || '-' || to_char(p.submitted_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYMMDD') || '-' ||
       lpad((coalesce(c.last, 0) + row_number() OVER (
           PARTITION BY p.agency_code, to_char(p.submitted_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYMMDD')
           ORDER BY p.submitted_at, p.n))::text, 4, '0') AS code,
       gen_random_uuid()::text AS instance_id,
       gen_random_uuid()::text AS task_id,
       CASE WHEN p.n % :applicant_every = 7 THEN :applicant
            ELSE 'citizen-' || lpad(floor(p.rc * 200000)::int::text, 6, '0') END AS owner
FROM p LEFT JOIN dossier_counters c  -- the real template dossiers took the first numbers of today
     ON c.agency_code = p.agency_code
    AND c.day = to_char(p.submitted_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYMMDD')
"""

# Dates of one dossier from its plan row ``b`` and its template ``d`` (a column is NULL where the template
# has it NULL): received within a day of submission; open ones due from 1.5 days ago to 13.5 days ahead
# (so ~10% overdue, ~7% due soon); finished ones due 1-11 days after receipt and finished around then.
DATES_SQL = """
CREATE UNLOGGED TABLE bench_dates AS
SELECT b.seq, r.received_at,
       CASE WHEN d.due_at IS NULL THEN NULL
            WHEN b.is_open AND d.finished_at IS NULL
                 THEN greatest(now() + (b.rc * 15 - 1.5) * interval '1 day',
                               r.received_at + interval '1 hour')
            ELSE r.received_at + (1 + floor(b.rc * 10)) * interval '1 day' END AS due_at
FROM bench_plan b
JOIN bench_templates t ON t.procedure_code = b.template_code AND t.stage = b.stage
JOIN dossiers d ON d.code = t.code
CROSS JOIN LATERAL (SELECT CASE WHEN d.received_at IS NULL THEN NULL
                                ELSE least(b.submitted_at + b.rd * interval '20 hours', now()) END
                        AS received_at) r
"""

INSTANCES_SQL = """
INSERT INTO instances (id, definition_id, process_key, business_key, status, state, state_format,
                       row_version, started_by, created_at, updated_at, completed_at)
SELECT b.instance_id, i.definition_id, i.process_key, b.code, i.status,
       replace(replace(replace(
           CASE WHEN t.task_id IS NULL THEN i.state ELSE replace(i.state, t.task_id, b.task_id) END,
           t.code, b.code), :template_owner, b.owner), t.procedure_code, b.procedure_code),
       i.state_format, i.row_version, b.owner, b.submitted_at, b.submitted_at + interval '1 day',
       CASE WHEN i.completed_at IS NULL THEN NULL ELSE b.submitted_at + interval '1 day' END
FROM bench_plan b
JOIN bench_templates t ON t.procedure_code = b.template_code AND t.stage = b.stage
JOIN instances i ON i.id = t.instance_id
WHERE b.seq > :low AND b.seq <= :high
ORDER BY b.seq
"""

DOSSIERS_SQL = """
INSERT INTO dossiers (code, procedure_code, level, instance_id, agency_code, owner, applicant, channel,
                      delivery_method, status, submitted_at, received_at, due_at, original_due_at,
                      finished_at, outcome, supplement_items, refusal_reason, apology, withdrawn_at, rating,
                      rating_comment, rated_at, due_soon_at, overdue_at, updated_at)
SELECT b.code, b.procedure_code, d.level, b.instance_id, b.agency_code, b.owner, d.applicant, d.channel,
       d.delivery_method, d.status, b.submitted_at, x.received_at, x.due_at, x.due_at, f.finished_at,
       CASE WHEN d.outcome IS NULL THEN NULL WHEN f.finished_at > x.due_at THEN 'late'
            WHEN f.finished_at > x.due_at - interval '1 day' THEN 'on_time' ELSE 'early' END,
       d.supplement_items, d.refusal_reason, NULL,
       CASE WHEN d.withdrawn_at IS NULL THEN NULL ELSE f.finished_at END,
       CASE WHEN d.status = 10 AND b.rd < 0.4 THEN 3 + floor(b.rc * 3)::int END, NULL,
       CASE WHEN d.status = 10 AND b.rd < 0.4 THEN f.finished_at + interval '2 hours' END,
       CASE WHEN x.due_at IS NULL THEN NULL
            WHEN f.finished_at IS NULL AND x.due_at < now() + interval '1 day'
                 THEN least(x.due_at - interval '1 day', now())
            WHEN f.finished_at > x.due_at THEN x.due_at - interval '1 day' END,
       CASE WHEN x.due_at IS NULL THEN NULL
            WHEN f.finished_at IS NULL AND x.due_at < now() THEN x.due_at + interval '1 minute'
            WHEN f.finished_at > x.due_at THEN x.due_at + interval '1 minute' END,
       coalesce(f.finished_at, x.received_at, b.submitted_at)
FROM bench_plan b
JOIN bench_dates x ON x.seq = b.seq
JOIN bench_templates t ON t.procedure_code = b.template_code AND t.stage = b.stage
JOIN dossiers d ON d.code = t.code
CROSS JOIN LATERAL (
    SELECT CASE WHEN d.finished_at IS NULL THEN NULL
                WHEN x.due_at IS NULL THEN least(b.submitted_at + b.rd * interval '2 days', now())
                ELSE least(x.received_at + (x.due_at - x.received_at) * (0.3 + b.rd * 0.85), now()) END
        AS finished_at) f
WHERE b.seq > :low AND b.seq <= :high
ORDER BY b.seq
"""

TASKS_SQL = """
INSERT INTO ready_tasks (id, instance_id, element_id, title, lane, form_ref, created_at)
SELECT b.task_id, b.instance_id, r.element_id, r.title, r.lane, r.form_ref,
       coalesce(x.received_at, b.submitted_at) + b.rd * interval '4 hours'
FROM bench_plan b
JOIN bench_dates x ON x.seq = b.seq
JOIN bench_templates t ON t.procedure_code = b.template_code AND t.stage = b.stage
JOIN ready_tasks r ON r.id = t.task_id
WHERE b.is_open
ORDER BY b.seq
"""

# The open tasks with their agency, as the dossier tracker keeps them for the copies' ready tasks.
OPEN_TASKS_SQL = """
INSERT INTO dossier_tasks (task_id, instance_id, agency_code, lane)
SELECT r.id, r.instance_id, d.agency_code, r.lane
FROM ready_tasks r JOIN dossiers d ON d.instance_id = r.instance_id
WHERE NOT EXISTS (SELECT 1 FROM dossier_tasks o WHERE o.task_id = r.id)
"""

CLAIMS_SQL = """
INSERT INTO task_claims (task_id, instance_id, claimed_by, claimed_at)
SELECT r.id, r.instance_id, 'bench-' || r.lane || '-' || (1 + floor(b.rc * 5)::int),
       r.created_at + interval '1 hour'
FROM ready_tasks r JOIN bench_plan b ON b.task_id = r.id
WHERE r.lane <> 'applicant' AND b.rd < 0.4
"""

PAUSES_SQL = """
INSERT INTO dossier_pauses (dossier_code, reason, started_at, ended_at)
SELECT d.code, 'supplement', d.updated_at, NULL FROM dossiers d JOIN bench_plan b ON b.code = d.code
WHERE d.status = 5 AND d.finished_at IS NULL
"""

COUNTERS_SQL = """
INSERT INTO dossier_counters (agency_code, day, last)
SELECT agency_code, substr(code, length(agency_code) + 2, 6), max(substr(code, length(agency_code) + 9)::int)
FROM bench_plan GROUP BY 1, 2
ON CONFLICT (agency_code, day) DO UPDATE SET last = greatest(dossier_counters.last, excluded.last)
"""


def bulk_seed(engine: SqlEngine, total: int, open_count: int, chunk: int = 50_000) -> None:
    """Copy the templates into ``total`` dossiers (``open_count`` open) with plain SQL, in chunks."""
    weights = [
        ("agency", n, lo, hi) for n, lo, hi in _ranges([(a, 1 / k) for k, a in enumerate(AGENCIES, 1)])
    ]
    weights += [("open", n, lo, hi) for n, lo, hi in _ranges(list(OPEN_STAGES.items()))]
    weights += [("finished", n, lo, hi) for n, lo, hi in _ranges(list(FINISHED_STAGES.items()))]
    procedures = _ranges([(code, share) for code, _, share in PROCEDURES])
    template_of = {code: template for code, template, _ in PROCEDURES}
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE bench_weights (kind text, name text, template text, lo float8, hi float8)")
        )
        rows = [{"k": k, "n": n, "t": None, "lo": lo, "hi": hi} for k, n, lo, hi in weights]
        rows += [
            {"k": "procedure", "n": n, "t": template_of[n], "lo": lo, "hi": hi} for n, lo, hi in procedures
        ]
        conn.execute(text("INSERT INTO bench_weights VALUES (:k, :n, :t, :lo, :hi)"), rows)
        conn.execute(text("SELECT setseed(0.42)"))
        applicant_every = max(total // 25, 10)
        params = {"open": open_count, "total": total, "applicant_every": applicant_every}
        conn.execute(text(PLAN_SQL), {**params, "applicant": APPLICANT_USER})
        conn.execute(text("CREATE UNIQUE INDEX ON bench_plan (seq)"))
        conn.execute(text("CREATE UNIQUE INDEX ON bench_plan (task_id)"))
        conn.execute(text(DATES_SQL))
        conn.execute(text("CREATE UNIQUE INDEX ON bench_dates (seq)"))
        conn.execute(text("ANALYZE bench_plan; ANALYZE bench_dates"))
    began = time.perf_counter()
    for low in range(0, total, chunk):
        with engine.begin() as conn:
            bounds = {"low": low, "high": low + chunk, "template_owner": TEMPLATE_OWNER}
            conn.execute(text(INSTANCES_SQL), bounds)
            conn.execute(text(DOSSIERS_SQL), bounds)
        done = min(low + chunk, total)
        rate = done / (time.perf_counter() - began)
        print(f"  {done:>9,} dossiers and instances copied ({rate:,.0f}/s)", flush=True)
    with engine.begin() as conn:
        for statement in (TASKS_SQL, OPEN_TASKS_SQL, CLAIMS_SQL, PAUSES_SQL, COUNTERS_SQL):
            conn.execute(text(statement))
        conn.execute(text("CREATE TABLE bench_seed (total bigint, open bigint, seeded_at timestamptz)"))
        conn.execute(text("INSERT INTO bench_seed VALUES (:t, :o, now())"), {"t": total, "o": open_count})
        conn.execute(text("DROP TABLE bench_plan, bench_dates, bench_weights"))
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))


def seed(url: str, total: int, open_count: int) -> None:
    """Deploy, load the catalogue, make the templates and copy them; print the times."""
    settings = replace(Settings.from_env(), database_url=url)
    engine = build_engine(settings)
    engine.deploy(bundled_bpmn(settings.workflows_dir), deployed_by="seed")
    service = build_dossiers(engine, settings)
    service.seed_catalogue(settings.workflows_dir)
    service.seed_calendar()
    took = make_templates(engine, service)
    print(f"templates: {2 * (len(OPEN_STAGES) + len(FINISHED_STAGES))} real dossiers in {took:.1f} s")
    began = time.perf_counter()
    bulk_seed(engine.store.engine, total, open_count)
    print(f"seeded {total:,} dossiers ({open_count:,} open) in {time.perf_counter() - began:.0f} s")
    engine.store.engine.dispose()


# -- measuring ------------------------------------------------------------------------------------------
def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1] * 1000}


def timed(reps: int, run: Callable[[int], Any]) -> dict[str, float]:
    for i in range(min(5, reps)):  # warm the caches and the pool
        run(i)
    samples = []
    for i in range(reps):
        began = time.perf_counter()
        run(i)
        samples.append(time.perf_counter() - began)
    return quantiles(samples)


def line(name: str, q: dict[str, float], floor: float | None = None, target: float | None = None) -> str:
    text_ = (
        f"  {name:<52} p50 {q['p50']:7.2f}  p95 {q['p95']:7.2f}  p99 {q['p99']:7.2f}  max {q['max']:7.2f} ms"
    )
    if floor:
        text_ += f"  x{q['p50'] / floor:5.1f} floor"
    if target is not None:
        text_ += f"  {'PASS' if q['p99'] < target else 'FAIL'} (p99 < {target:.0f})"
    return text_


@contextmanager
def captured(engine: SqlEngine) -> Iterator[list[tuple[str, Any]]]:
    """Record the statements ``engine`` runs (to EXPLAIN exactly those)."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(engine: SqlEngine, title: str, call: Callable[[Connection], Any]) -> None:
    """Print EXPLAIN (ANALYZE, BUFFERS) of every statement ``call`` runs."""
    with captured(engine) as seen, engine.connect() as conn:
        call(conn)
        conn.rollback()
    print(f"\n-- {title}")
    with engine.connect() as conn:
        for statement, parameters in seen:
            print("   " + " ".join(statement.split())[:400])
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).all()
            print("\n".join(f"     {row[0]}" for row in plan))
        conn.rollback()


def biggest_agencies(engine: SqlEngine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT agency_code FROM dossiers GROUP BY 1 ORDER BY count(*) DESC LIMIT 3")
        ).all()
    return [r.agency_code for r in rows]


def ensure_users(accounts: Any, agencies: list[str]) -> list[tuple[str, str, list[str]]]:
    """Create the officials of the three largest agencies and an applicant (once); return (user, agency,
    lanes) of the officials."""
    existing = {u["username"] for u in accounts.list_users()}
    officials = []
    for rank, agency in enumerate(agencies, 1):
        for suffix, lanes in LANE_USERS.items():
            name = f"bench-{suffix}-{rank}"
            officials.append((name, agency, lanes))
            if name not in existing:
                accounts.create_user(
                    name, PASSWORD, roles=set(lanes), full_name=f"Cán bộ {suffix} {rank}", agency_code=agency
                )
    if APPLICANT_USER not in existing:
        accounts.create_user(APPLICANT_USER, PASSWORD, roles={"applicant"}, full_name="Công dân đo hiệu năng")
    return officials


def measure_sql(engine: SqlEngine, agencies: list[str], reps: int) -> dict[str, dict[str, float]]:
    """Time the store functions the endpoints call, each in a read-only transaction as the service does."""
    lanes = ["reception", "specialist", "leader"]

    def queue(i: int, **extra: Any) -> Any:
        where = {"agency_code": agencies[i % 3], "lanes": [lanes[i % 3]], **extra}
        return where

    def run(fn: Callable[[Connection, int], Any]) -> Callable[[int], Any]:
        def go(i: int) -> Any:
            with engine.connect() as conn, conn.begin():
                return fn(conn, i)

        return go

    with engine.connect() as conn:
        code = conn.execute(text("SELECT code FROM dossiers ORDER BY random() LIMIT 1")).scalar_one()
    cases: dict[str, Callable[[Connection, int], Any]] = {
        "primary-key lookup of one dossier (reference)": lambda c, i: store.get_dossier(c, code),
        "task_queue first page (agency, lane)": lambda c, i: store.task_queue(c, queue(i), limit=20),
        "task_queue page 50 (offset 980)": lambda c, i: store.task_queue(c, queue(i), offset=980, limit=20),
        "task_queue deadline=overdue": lambda c, i: store.task_queue(
            c, queue(i, deadline="overdue"), limit=20
        ),
        "task_queue procedure_code": lambda c, i: store.task_queue(
            c, queue(i, procedure_code="2.000488"), limit=20
        ),
        "task_counts (agency, three lanes)": lambda c, i: store.task_counts(
            c, {"agency_code": agencies[i % 3], "lanes": lanes}
        ),
        "list_dossiers (agency) first page": lambda c, i: store.list_dossiers(
            c, {"agency_code": agencies[i % 3]}, limit=20
        ),
        "list_dossiers (agency, status=4)": lambda c, i: store.list_dossiers(
            c, {"agency_code": agencies[i % 3], "status": 4}, limit=20
        ),
        "list_dossiers (applicant's own)": lambda c, i: store.list_dossiers(
            c, {"owner": APPLICANT_USER}, limit=20
        ),
    }
    return {name: timed(reps, run(fn)) for name, fn in cases.items()}


def measure_http(url: str, agencies: list[str], reps: int) -> dict[str, dict[str, float]]:
    """Time the endpoints through the real app's test client, as officials of the largest agencies."""
    from api import create_app

    settings = replace(Settings.from_env(), database_url=url)
    app = create_app(settings)
    client = app.test_client()
    accounts = app.extensions["motcua.accounts"]
    officials = ensure_users(accounts, agencies)
    tokens: dict[str, str] = {}

    def header(user: str) -> dict[str, str]:
        if user not in tokens:
            response = client.post("/api/v1/auth/token", json={"username": user, "password": PASSWORD})
            assert response.status_code == 200, response.get_json()
            tokens[user] = response.get_json()["access_token"]
        return {"Authorization": f"Bearer {tokens[user]}"}

    for user in [o[0] for o in officials] + [APPLICANT_USER]:
        header(user)  # log in before timing (argon2 is deliberately slow)
    single = [o for o in officials if len(o[2]) == 1]
    everyone = [o for o in officials if len(o[2]) == 3]
    engine = app.extensions["motcua.engine"].store.engine

    def get(path: str, user: str | None) -> Callable[[int], Any]:
        def go(i: int) -> Any:
            response = client.get(path, headers=header(user) if user else {})
            assert response.status_code == 200, (path, response.status_code, response.get_data()[:300])
            return response

        return go

    def official(
        path: str, users: list[tuple[str, str, list[str]]], lane: bool = True
    ) -> Callable[[int], Any]:
        def go(i: int) -> Any:
            user, _, lanes = users[i % len(users)]
            sep = "&" if "?" in path else "?"
            suffix = f"{sep}lane={lanes[0]}" if lane else ""
            return get(path + suffix, user)(i)

        return go

    lookup_codes = []
    with engine.connect() as conn:
        for _, agency, _ in everyone:
            found = conn.execute(
                text("SELECT code FROM dossiers WHERE agency_code = :a ORDER BY random() LIMIT 20"),
                {"a": agency},
            )
            lookup_codes += [(r.code, agency) for r in found]
    by_agency = {agency: user for user, agency, _ in everyone}

    cases: dict[str, Callable[[int], Any]] = {
        "GET /healthz (framework floor)": get("/healthz", None),
        "GET /api/v1/tasks?lane= first page (inbox)": official("/api/v1/tasks?per_page=20", single),
        "GET /api/v1/tasks all lanes first page": official("/api/v1/tasks?per_page=20", everyone, lane=False),
        "GET /api/v1/tasks?lane=&page=50": official("/api/v1/tasks?per_page=20&page=50", single),
        "GET /api/v1/tasks?lane=&deadline=overdue": official(
            "/api/v1/tasks?per_page=20&deadline=overdue", single
        ),
        "GET /api/v1/tasks?lane=&procedure_code=": official(
            "/api/v1/tasks?per_page=20&procedure_code=2.000488", single
        ),
        "GET /api/v1/tasks/counts": official("/api/v1/tasks/counts", everyone, lane=False),
        "GET /api/v1/dossiers (official's agency)": official(
            "/api/v1/dossiers?per_page=20", everyone, lane=False
        ),
        "GET /api/v1/dossiers?status=4": official(
            "/api/v1/dossiers?per_page=20&status=4", everyone, lane=False
        ),
        "GET /api/v1/dossiers/<code> (lookup)": lambda i: get(
            f"/api/v1/dossiers/{lookup_codes[i % len(lookup_codes)][0]}",
            by_agency[lookup_codes[i % len(lookup_codes)][1]],
        )(i),
        "GET /api/v1/dossiers (applicant's own)": get("/api/v1/dossiers?per_page=20", APPLICANT_USER),
        "GET /api/v1/tasks (applicant's own)": get("/api/v1/tasks?per_page=20", APPLICANT_USER),
    }
    results = {name: timed(reps, fn) for name, fn in cases.items()}
    app.extensions["motcua.engine"].store.engine.dispose()
    return results


def print_plans(engine: SqlEngine, agency: str) -> None:
    lanes = {"agency_code": agency, "lanes": ["reception"]}
    explain(engine, "task_queue first page (count + page)", lambda c: store.task_queue(c, lanes, limit=20))
    explain(engine, "task_queue page 50", lambda c: store.task_queue(c, lanes, offset=980, limit=20))
    explain(
        engine,
        "task_queue deadline=overdue",
        lambda c: store.task_queue(c, {**lanes, "deadline": "overdue"}, limit=20),
    )
    explain(
        engine,
        "task_counts (three lanes)",
        lambda c: store.task_counts(
            c, {"agency_code": agency, "lanes": ["reception", "specialist", "leader"]}
        ),
    )
    explain(
        engine, "list_dossiers (agency)", lambda c: store.list_dossiers(c, {"agency_code": agency}, limit=20)
    )
    explain(
        engine,
        "list_dossiers (agency, status=4)",
        lambda c: store.list_dossiers(c, {"agency_code": agency, "status": 4}, limit=20),
    )

    def month(c: Connection) -> Any:
        now = c.execute(text("SELECT date_trunc('month', now()) - interval '2 months'")).scalar_one()
        return indicator_store.monthly_counts(
            c, start=now, end=now + timedelta(days=31), agency_code=agency, fee_procedures={"2.000488"}
        )

    explain(engine, "indicators: one agency, one month", month)


def machine(engine: SqlEngine) -> str:
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar_one()
        buffers = conn.execute(text("SHOW shared_buffers")).scalar_one()
        size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar_one()
    return (
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
        f"PostgreSQL {version} (shared_buffers {buffers}), database size {size}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="keep the seeded database when it has that size")
    parser.add_argument("--no-plans", action="store_true", help="skip the EXPLAIN output")
    args = parser.parse_args()

    url = args.database_url
    ensure_database(url, fresh=False)
    probe = create_engine(url)
    reuse = args.reuse and seeded_size(probe) == (args.dossiers, args.open)
    probe.dispose()
    if not reuse:
        ensure_database(url, fresh=True)
    db = create_engine(url, pool_size=10)
    from motcua.schema import current_revision

    before = current_revision(db)
    upgrade(db)  # also brings a reused database to the latest migration
    if reuse and current_revision(db) != before:
        # What autovacuum does after a migration filled a table: statistics and the visibility map, so that
        # the plans measured below are those a running database has, not those of a table never analysed.
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    if reuse:
        print(f"reusing the seeded database ({args.dossiers:,} dossiers, {args.open:,} open)")
    else:
        seed(url, args.dossiers, args.open)
    print(machine(db))
    agencies = biggest_agencies(db)
    with db.connect() as conn:
        sizes = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM dossiers) AS dossiers, "
                "(SELECT count(*) FROM ready_tasks) AS ready, "
                "(SELECT count(*) FROM dossiers WHERE agency_code = :a) AS biggest, "
                "(SELECT count(*) FROM ready_tasks r JOIN dossiers d ON d.instance_id = r.instance_id "
                " WHERE d.agency_code = :a AND r.lane = 'reception') AS biggest_reception"
            ),
            {"a": agencies[0]},
        ).one()
    print(
        f"sizes: {sizes.dossiers:,} dossiers, {sizes.ready:,} ready tasks; largest agency {agencies[0]}: "
        f"{sizes.biggest:,} dossiers, {sizes.biggest_reception:,} tasks in its reception lane"
    )
    print(
        f"\n== (a) store functions, SQL alone ({args.reps} repetitions, three largest agencies, lanes varied)"
    )
    sql = measure_sql(db, agencies, args.reps)
    floor = sql["primary-key lookup of one dossier (reference)"]["p50"]
    for name, q in sql.items():
        print(line(name, q, floor))
    print(f"\n== (b) HTTP through the Flask test client ({args.reps} repetitions)")
    http = measure_http(url, agencies, args.reps)
    floor = http["GET /healthz (framework floor)"]["p50"]
    officials_page = ("/api/v1/tasks", "/api/v1/dossiers (o", "/api/v1/dossiers?")
    for name, q in http.items():
        target = TARGET_MS if any(p in name for p in officials_page) else None
        print(line(name, q, floor, target))
    if not args.no_plans:
        print(f"\n== plans (largest agency {agencies[0]}, reception lane)")
        print_plans(db, agencies[0])
    db.dispose()


if __name__ == "__main__":
    main()
