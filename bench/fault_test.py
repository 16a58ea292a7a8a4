"""Fault test: a mixed load on two API servers and two workers while they are SIGKILLed and PostgreSQL
restarts; then a check that nothing the service acknowledged was lost, duplicated or left inconsistent.

A private PostgreSQL (initdb in a temp folder, 127.0.0.1:55432, never the shared server) is migrated and
seeded with the ``motcua`` commands; two ``motcua serve`` (granian, several workers each) and two ``motcua
worker`` run against it.  Citizens submit level-3 and level-4 dossiers with an Idempotency-Key, retrying with
the same key as a real client does, each request to either node as behind a balancer; officials claim and
complete their tasks; level-4 fees are paid at the sandbox bank (its page, the customer's choice, its IPN) and
the bank's IPN is repeated until our server acknowledges it; an integrator starts ``timer_wait`` instances
(tests/data/engine/timer_wait.bpmn) due 3 s later, which the workers must fire.  During the load: the whole
process group of one server is SIGKILLed and restarted, both workers are SIGKILLed and restarted, and
PostgreSQL is restarted with ``pg_ctl restart -m immediate`` (servers and workers are NOT restarted then: they
must reconnect by themselves).  After the load the workers drain (the last timers fire, payments whose IPN was
lost are reconciled), then the database is checked against what the clients were told:

- every acknowledged submission exists, with its instance; one dossier per Idempotency-Key, no dossier without
  one; dossier codes gapless per agency and day (DOMAIN.md, Circular 01/2018);
- every instance re-loaded and re-projected as the engine does: its ready tasks and status equal the stored
  projection, and the dossier's status equals the status of where its process stands; no ready task of a
  completed instance; no task both ready and recorded completed in the audit trail; every acknowledged
  completion in the audit trail;
- payments: every acknowledged IPN settled (paid, one receipt, process advanced); at most one paid attempt and
  one receipt per dossier; receipt numbers gapless; every payment the sandbox bank took is recorded paid;
- timers: every acknowledged start fired exactly once and ran to its end; no open incident.

Then the checker proves itself: on copies of the database (CREATE DATABASE ... TEMPLATE), each broken on
purpose in one way (a dossier deleted, a completion erased, a payment doubled, a gap in the codes...), it must
find a problem every time.  Prints the operations, the errors the clients saw after each fault, the time to
recover from each fault, and exits 1 on any loss or inconsistency (2: the test itself could not run).

    .venv/bin/python bench/fault_test.py                       # ~3 minutes; as root the private PostgreSQL
                                                               # runs as the postgres OS user
    .venv/bin/python bench/fault_test.py --duration 120 --citizens 6 --report var/fault.json
    .venv/bin/python bench/fault_test.py --keep                # leave the private PostgreSQL running (and
                                                               # write the acknowledgements) for inspection
    .venv/bin/python bench/fault_test.py --check-only postgresql+psycopg://postgres@127.0.0.1:55432/copy \\
        --acks var/fault-acks.json                             # only the checks, on a database and the acks
    # An existing database instead of a private server (the test migrates it and fills it: use a fresh one):
    .venv/bin/python bench/fault_test.py --database-url postgresql+psycopg://... \\
        --restart-command 'sudo systemctl restart postgresql'
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
import requests  # noqa: E402
from _pgcluster import PgCluster  # noqa: E402

from tests.dossiers.conftest import APPLICANT, COPY_FORM, LLTP_FORM  # noqa: E402

MOTCUA = [sys.executable, "-m", "motcua.cli"]
LEVEL3, LEVEL4 = "2.000815", "2.000488"  # certified copy (commune), judicial record (provincial police)
POLICE, COMMUNE = "000.00.14.H26", "000.01.01.H26"
PASSWORD = "mật-khẩu-kiểm-thử-sự-cố-2026"
# Officials who work the queues: (username, role, agency).  The commune's are created by `motcua seed --demo`.
POLICE_OFFICIALS = (
    ("police.desk", "reception", POLICE),
    ("police.specialist", "specialist", POLICE),
    ("police.leader", "leader", POLICE),
)
TASK_DATA: dict[str, dict[str, Any]] = {
    "review": {"decision": "accept"},
    "appraise": {"appraisal_opinion": "Đủ điều kiện", "draft_result": "Bản dự thảo kết quả"},
    "approve": {"approval": "approve", "approval_note": ""},
    "desk_result": {"fee_paid": True, "handed_over_to": APPLICANT["name"]},
    "hand_over_result": {"handed_over_to": APPLICANT["name"], "receiver_id_number": APPLICANT["id_number"]},
}
RETRYABLE = {500, 502, 503, 504}
TIMER_BPMN = (
    ROOT / "tests" / "data" / "engine" / "timer_wait.bpmn"
)  # start, a timer at ``fire_at``, a script, end


# -- processes -----------------------------------------------------------------------------------------------
@dataclass
class Proc:
    """A ``motcua`` process in its own process group (so that a SIGKILL takes the server's workers too)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    generation: int = 0

    def start(self) -> None:
        self.generation += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.name} generation {self.generation} =====\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the whole process group: the server's master and every worker, mid-request."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def motcua(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    done = subprocess.run(
        [*MOTCUA, *args, "--json"],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"motcua {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def wait_healthy(base: str, timeout: float = 90) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if requests.get(f"{base}/healthz", timeout=3).status_code == 200:
                return time.monotonic() - began
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base} not healthy after {timeout} s")


# -- what the clients were told ------------------------------------------------------------------------------
@dataclass
class Ledger:
    """Everything the service acknowledged to the clients, and every error they saw (thread-safe)."""

    submissions: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> {code, level}
    completions: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> {code, element}
    ipns: dict[str, dict[str, Any]] = field(default_factory=dict)  # txn_ref -> {code, rsp}
    timers: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> {instance, due}
    bank_choices: int = 0
    claims: int = 0
    key_conflicts: list[str] = field(default_factory=list)  # one key answered with two different codes
    errors: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, kind)
    refusals: list[str] = field(default_factory=list)  # answers a correct client should never get
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors.append((time.monotonic(), kind))

    def refused(self, what: str) -> None:
        with self.lock:
            self.refusals.append(what)

    def to_json(self) -> dict[str, Any]:
        return {
            "submissions": self.submissions,
            "completions": self.completions,
            "ipns": self.ipns,
            "timers": self.timers,
        }


class Client:
    """One user agent: a bearer token, the servers it may reach, retries of failed requests."""

    def __init__(
        self, bases: list[str], ledger: Ledger, user: str, password: str, stop: threading.Event
    ) -> None:
        self.bases, self.ledger, self.user, self.password, self.stop = bases, ledger, user, password, stop
        self.session = requests.Session()
        self.which = random.randrange(len(bases))
        self.token: str | None = None

    @property
    def base(self) -> str:
        return self.bases[self.which]

    def _pick(self) -> None:
        self.which = random.randrange(len(self.bases))  # each request to any node, as behind a balancer

    def _switch(self) -> None:
        self.which = (self.which + 1) % len(self.bases)  # what a load balancer does with a dead node

    def request(
        self, method: str, path: str, *, auth: bool = True, deadline: float = 90, **kwargs: Any
    ) -> requests.Response | None:
        """Send until an answer that is not a server failure, or ``deadline`` seconds: None then."""
        began, pause = time.monotonic(), 0.1
        extra = dict(kwargs.pop("headers", None) or {})
        if not path.startswith("http"):
            self._pick()
        while time.monotonic() - began < deadline:
            if not auth or self.token is not None or self._login():
                headers = {**extra, "Authorization": f"Bearer {self.token}"} if auth else extra
                url = path if path.startswith("http") else self.base + path
                try:
                    response = self.session.request(
                        method, url, headers=headers, timeout=20, allow_redirects=False, **kwargs
                    )
                    if response.status_code == 401 and auth:
                        self.token = None
                        self.ledger.error("401")
                    elif response.status_code not in RETRYABLE:
                        return response
                    else:
                        self.ledger.error(f"http {response.status_code}")
                except requests.ConnectionError:
                    self.ledger.error("connection")
                    self._switch()
                except requests.Timeout:
                    self.ledger.error("timeout")
                    self._switch()
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        self.ledger.error("gave up")
        return None

    def _login(self) -> bool:
        try:
            response = self.session.post(
                f"{self.base}/api/v1/auth/token",
                json={"username": self.user, "password": self.password},
                timeout=20,
            )
        except requests.RequestException:
            self.ledger.error("connection")
            self._switch()
            return False
        if response.status_code == 200:
            self.token = response.json()["access_token"]
            return True
        self.ledger.error(f"login {response.status_code}")
        return False


# -- the load ------------------------------------------------------------------------------------------------
def citizen_loop(client: Client, level4: collections.deque[str], rate: float) -> None:
    """Submit dossiers, half level 3, half level 4, each with its own Idempotency-Key (kept for retries)."""
    ledger = client.ledger
    while not client.stop.is_set():
        level = random.choice((3, 4))
        key = f"fault-{uuid.uuid4().hex}"
        body: dict[str, Any] = (
            {"procedure_code": LEVEL3, "applicant": APPLICANT, "form_data": COPY_FORM}
            if level == 3
            else {
                "procedure_code": LEVEL4,
                "applicant": APPLICANT,
                "delivery_method": "online",
                "form_data": LLTP_FORM,
            }
        )
        response = client.request("POST", "/api/v1/dossiers", json=body, headers={"Idempotency-Key": key})
        if response is not None and response.status_code in (200, 201):
            code = response.json()["code"]
            with ledger.lock:
                earlier = ledger.submissions.get(key)
                if earlier and earlier["code"] != code:
                    ledger.key_conflicts.append(key)
                ledger.submissions[key] = {"code": code, "level": level}
            if level == 4:
                level4.append(code)
        elif response is not None:
            ledger.refused(f"submission {response.status_code}: {response.text[:200]}")
        client.stop.wait(random.expovariate(rate))


def timer_loop(client: Client, lead: float) -> None:
    """An integrator starts ``timer_wait`` instances due ``lead`` seconds on; the workers fire each once."""
    ledger = client.ledger
    while not client.stop.is_set():
        key = f"timer-{uuid.uuid4().hex}"
        due = (datetime.now(UTC) + timedelta(seconds=lead)).isoformat()
        response = client.request(
            "POST", "/api/v1/processes/timer_wait/instances", json={"data": {"fire_at": due}},
            headers={"Idempotency-Key": key},
        )  # fmt: skip
        if response is not None and response.status_code in (200, 201):
            with ledger.lock:
                ledger.timers[key] = {"instance": response.json()["id"], "due": due}
        elif response is not None:
            ledger.refused(f"timer start {response.status_code}: {response.text[:200]}")
        client.stop.wait(0.3)


def official_loop(client: Client) -> None:
    """Work the queue: claim each task, complete it with what its form needs."""
    ledger = client.ledger
    while not client.stop.is_set():
        queue = client.request("GET", "/api/v1/tasks?per_page=20", deadline=10)
        items = queue.json()["items"] if queue is not None and queue.status_code == 200 else []
        for task in items:
            data = TASK_DATA.get(task["element_id"])
            if client.stop.is_set() or data is None:
                continue
            if task.get("claimed_by") in (None, client.user):
                claimed = client.request("POST", f"/api/v1/tasks/{task['id']}/claim", deadline=20)
                if claimed is None or claimed.status_code != 200:
                    continue
                with ledger.lock:
                    ledger.claims += 1
            done = client.request(
                "POST", f"/api/v1/tasks/{task['id']}/complete", json={"data": data}, deadline=30
            )
            if done is not None and done.status_code == 200:
                with ledger.lock:
                    ledger.completions[task["id"]] = {
                        "code": task["dossier_code"],
                        "element": task["element_id"],
                    }
            elif done is not None and done.status_code not in (404, 409):
                # 404/409: a retried completion whose first attempt went through, or a task gone meanwhile
                ledger.refused(f"complete {task['element_id']} {done.status_code}: {done.text[:200]}")
        if not items:
            client.stop.wait(0.5)


def payer_loop(client: Client, level4: collections.deque[str]) -> None:
    """Pay each level-4 dossier once it waits for payment (status 6) at the sandbox bank, like a browser."""
    waiting: list[str] = []
    while not client.stop.is_set():
        while level4:
            waiting.append(level4.popleft())
        for code in list(waiting):
            if client.stop.is_set():
                break
            seen = client.request("GET", f"/api/v1/dossiers/{code}", deadline=10)
            if seen is None or seen.status_code != 200 or seen.json()["status"]["code"] != 6:
                continue
            waiting.remove(code)
            pay(client, code)
        client.stop.wait(0.5)


def _relative(url: str) -> str:
    """``url`` without its node: sent to any node (each serves the sandbox, all share its data)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def pay(client: Client, code: str) -> None:
    ledger = client.ledger
    started = client.request("POST", f"/api/v1/dossiers/{code}/payments")
    if started is None or started.status_code != 201:
        if started is not None:
            ledger.refused(f"start payment {started.status_code}: {started.text[:200]}")
        return
    attempt = started.json()
    page = client.request("GET", _relative(attempt["payment_url"]), auth=False)
    if page is None or page.status_code != 200:
        ledger.refused(f"bank page {page.status_code if page is not None else 'none'}")
        return
    forms = re.findall(r"<form[^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", page.text, flags=re.S)
    [(action, inputs)] = [(a, body) for a, body in forms if "Thanh toán thành công" in body]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', inputs))
    fields.update(re.findall(r'<button[^>]*name="(\w+)"[^>]*value="([^"]*)"', inputs))
    back = client.request("POST", _relative(action), auth=False, data=fields)
    if back is not None and back.status_code == 409:
        # An earlier try of this very choice went through before its answer was lost: the bank took the money
        # and its own IPN (or the reconciliation job) settles it; the check below looks for it.
        with ledger.lock:
            ledger.bank_choices += 1
        return
    if back is None or back.status_code != 302:
        ledger.refused(f"bank choice {back.status_code if back is not None else 'none'}")
        return
    with ledger.lock:
        ledger.bank_choices += 1
    query = urlsplit(back.headers["Location"]).query
    # The bank repeats its IPN until the merchant answers 00 or 02 (here: once more at least, a duplicate).
    # 99 ("unknown error": the merchant could not record it now, e.g. its database was restarting) asks the
    # bank to notify again, which it does a moment later, as VNPay does.
    rsp = None
    for _ in range(30):
        answer = client.request("GET", f"/api/v1/payments/vnpay/ipn?{query}", auth=False)
        rsp = answer.json().get("RspCode") if answer is not None and answer.status_code == 200 else None
        if rsp != "99":
            break
        time.sleep(1.0)
    if rsp in ("00", "02"):
        with ledger.lock:
            ledger.ipns[attempt["txn_ref"]] = {"code": code, "rsp": rsp}
    else:
        ledger.refused(f"IPN answered {rsp}")


# -- the faults ----------------------------------------------------------------------------------------------
@dataclass
class Fault:
    name: str
    at: float  # monotonic
    recovered_after: float | None = None
    detail: str = ""


def any_db_request(base: str, token: str) -> bool:
    try:
        return (
            requests.get(
                f"{base}/api/v1/tasks?per_page=1", headers={"Authorization": f"Bearer {token}"}, timeout=5
            ).status_code
            == 200
        )
    except requests.RequestException:
        return False


def timer_fired_since(db: str, since_epoch: float) -> bool:
    """True when a timer was fired (``timer_fired`` in the audit trail) after ``since_epoch``."""
    try:
        with psycopg.connect(db, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FROM audit WHERE action = 'timer_fired' AND at > to_timestamp(%s)",
                (since_epoch,),
            ).fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def wait_until(test: Callable[[], bool], timeout: float = 120) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if test():
            return time.monotonic() - began
        time.sleep(0.1)
    return None


# -- the checks ----------------------------------------------------------------------------------------------
@dataclass
class Snapshot:
    """What the database holds after the run, read in one transaction."""

    dossiers: dict[str, tuple[Any, ...]]  # code -> (code, instance_id, status)
    instances: dict[str, tuple[Any, ...]]  # id -> (id, status, business_key)
    key_codes: dict[str, str | None]  # Idempotency-Key -> business key of the instance it started
    ready: dict[str, set[str]]  # instance id -> ready task ids
    completed_tasks: set[str]  # task ids with a task_completed audit entry
    counters: dict[tuple[str, str], int]  # (agency, YYMMDD) -> last dossier number
    payments: dict[str, tuple[Any, ...]]  # txn_ref -> (txn_ref, status, process_advanced, dossier_code, id)
    receipts: list[tuple[Any, ...]]  # (number, payment id, dossier code)
    bank_paid: list[str]  # txn_refs the sandbox bank took money for
    fired: collections.Counter[str]  # instance id -> timer_fired entries
    lags: list[float]  # seconds from due time to firing, sorted
    incidents: list[tuple[Any, ...]]  # open incidents


def read_snapshot(dsn: str) -> Snapshot:
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql.encode()).fetchall()

        ready: dict[str, set[str]] = collections.defaultdict(set)
        for task_id, instance_id in rows("SELECT id, instance_id FROM ready_tasks"):
            ready[instance_id].add(task_id)
        fired_rows = rows("SELECT instance_id, details FROM audit WHERE action = 'timer_fired'")
        return Snapshot(
            dossiers={r[0]: r for r in rows("SELECT code, instance_id, status FROM dossiers")},
            instances={r[0]: r for r in rows("SELECT id, status, business_key FROM instances")},
            key_codes={
                key: code
                for key, code in rows(
                    "SELECT s.key, i.business_key FROM start_requests s "
                    "LEFT JOIN instances i ON i.id = s.instance_id"
                )
            },
            ready=ready,
            completed_tasks={r[0] for r in rows("SELECT task_id FROM audit WHERE action = 'task_completed'")},
            counters={(a, d): n for a, d, n in rows("SELECT agency_code, day, last FROM dossier_counters")},
            payments={
                r[0]: r
                for r in rows("SELECT txn_ref, status, process_advanced, dossier_code, id FROM payments")
            },
            receipts=rows("SELECT number, payment_id, dossier_code FROM receipts"),
            bank_paid=[r[0] for r in rows("SELECT txn_ref FROM sandbox_transactions WHERE status = 'paid'")],
            fired=collections.Counter(instance_id for instance_id, _details in fired_rows),
            lags=sorted(float(json.loads(details).get("lag_seconds") or 0) for _i, details in fired_rows),
            incidents=rows(
                "SELECT instance_id, element_id, message FROM incidents WHERE resolved_at IS NULL"
            ),
        )


def gapless(numbers: list[int]) -> bool:
    return sorted(numbers) == list(range(1, len(numbers) + 1))


def check_submissions(s: Snapshot, acks: dict[str, Any]) -> list[str]:
    """Nothing acknowledged lost; one dossier per key, none without; codes gapless per agency and day."""
    problems = []
    for key, ack in acks["submissions"].items():
        code = ack["code"]
        if code not in s.dossiers:
            problems.append(f"LOST: acknowledged dossier {code} (key {key}) is not in the database")
        elif s.dossiers[code][1] not in s.instances:
            problems.append(f"LOST: dossier {code} has no process instance")
        if s.key_codes.get(key) != code:
            problems.append(f"KEY: {key} acknowledged {code}, the database records {s.key_codes.get(key)}")
    keyed = [code for code in s.key_codes.values() if code]
    if len(keyed) != len(set(keyed)):
        problems.append("DUPLICATE: one dossier recorded under two Idempotency-Keys")
    unkeyed = sorted(set(s.dossiers) - set(keyed))
    if unkeyed:
        problems.append(f"DUPLICATE: {len(unkeyed)} dossier(s) without their Idempotency-Key: {unkeyed[:5]}")
    numbers: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    for code in s.dossiers:  # <agency>-<YYMMDD>-<NNNN> (DOMAIN.md: unique, never reused; gapless here)
        agency, day, seq = code.rsplit("-", 2)
        numbers[(agency, day)].append(int(seq))
    for (agency, day), seqs in numbers.items():
        if not gapless(seqs) or s.counters.get((agency, day)) != len(seqs):
            problems.append(
                f"GAP: dossier codes of {agency} on {day}: {len(seqs)} codes, last {max(seqs)}, "
                f"counter {s.counters.get((agency, day))}"
            )
    return problems


def check_projections(database_url: str, s: Snapshot) -> list[str]:
    """Re-load every instance as the engine does and re-project it: the stored projection and the dossier
    status must be what its state says."""
    from dossiers.status import status_at
    from engine.projection import project
    from motcua.settings import Settings
    from motcua.wiring import build_engine

    problems = []
    engine = build_engine(Settings(database_url=database_url, scheduler=False))
    try:
        for instance_id, status, business_key in s.instances.values():
            with engine.store.unit_of_work(write=False) as uow:
                workflow = engine._load(uow, uow.instance_head(instance_id)).workflow
            projection = project(workflow, business_key)
            stored = s.ready.get(instance_id, set())
            if set(projection.ready_tasks) != stored:
                problems.append(
                    f"PROJECTION: {instance_id} ({business_key}) ready {sorted(projection.ready_tasks)}, "
                    f"stored {sorted(stored)}"
                )
            if projection.status != status:
                problems.append(
                    f"PROJECTION: {instance_id} status {status}, its state says {projection.status}"
                )
            if status == "completed" and stored:
                problems.append(f"READY AFTER END: completed instance {instance_id} has ready tasks")
            dossier, expected = s.dossiers.get(business_key or ""), status_at(projection.position)
            if (
                dossier is not None
                and expected is not None
                and status != "cancelled"
                and dossier[2] != expected
            ):
                problems.append(
                    f"STATUS: dossier {business_key} at {dossier[2]}, its process at {int(expected)}"
                )
    finally:
        engine.store.engine.dispose()
    return problems


def check_tasks(s: Snapshot, acks: dict[str, Any]) -> list[str]:
    problems = []
    both = sorted(set().union(*s.ready.values()) & s.completed_tasks)
    if both:
        problems.append(f"OPEN AND DONE: {len(both)} task(s) ready and recorded completed: {both[:5]}")
    for task_id, ack in acks["completions"].items():
        if task_id not in s.completed_tasks:
            problems.append(
                f"LOST: acknowledged completion of {ack['element']} ({ack['code']}, task {task_id})"
            )
    return problems


def check_payments(s: Snapshot, acks: dict[str, Any]) -> list[str]:
    """Never counted twice, every acknowledged IPN settled, every payment the bank took recorded."""
    problems = []
    paid = collections.Counter(row[3] for row in s.payments.values() if row[1] == "paid")
    problems += [f"PAID TWICE: dossier {code} has {n} paid attempts" for code, n in paid.items() if n > 1]
    by_payment = collections.Counter(payment_id for _n, payment_id, _c in s.receipts)
    by_dossier = collections.Counter(code for _n, _p, code in s.receipts)
    problems += [f"RECEIPTS: payment {p} has {n} receipts" for p, n in by_payment.items() if n > 1]
    problems += [f"RECEIPTS: dossier {c} has {n} receipts" for c, n in by_dossier.items() if n > 1]
    paid_ids = {row[4] for row in s.payments.values() if row[1] == "paid"}
    if paid_ids != set(by_payment):
        problems.append(
            f"RECEIPTS: {len(paid_ids ^ set(by_payment))} paid attempt(s) without a receipt or reverse"
        )
    by_year: dict[str, list[int]] = collections.defaultdict(list)
    for number, _p, _c in s.receipts:  # BL-<yyyy>-<nnnnnnn>, gapless (payments/tables.py)
        _bl, year, seq = number.split("-")
        by_year[year].append(int(seq))
    problems += [
        f"GAP: receipt numbers of {y}: {len(n)}, last {max(n)}" for y, n in by_year.items() if not gapless(n)
    ]
    for txn_ref, ack in acks["ipns"].items():
        row = s.payments.get(txn_ref)
        if row is None or row[1] != "paid" or not row[2]:
            problems.append(
                f"LOST: IPN of {txn_ref} ({ack['code']}) acknowledged, payment {row and row[1:3]}"
            )
        elif ack["code"] not in s.dossiers:
            problems.append(f"LOST: dossier {ack['code']} of the acknowledged IPN {txn_ref}")
        elif s.dossiers[ack["code"]][2] == 6:
            problems.append(f"STUCK: dossier {ack['code']} paid but still waits for payment")
    for txn_ref in s.bank_paid:
        row = s.payments.get(txn_ref)
        if row is None or row[1] != "paid":
            problems.append(f"LOST: the bank took payment {txn_ref}, recorded {row and row[1]}")
    return problems


def check_timers(s: Snapshot, acks: dict[str, Any]) -> list[str]:
    """Every acknowledged timer start fired once and ran to its end; no timer fired twice."""
    problems = []
    for key, ack in acks.get("timers", {}).items():
        row, fired = s.instances.get(ack["instance"]), s.fired[ack["instance"]]
        if row is None:
            problems.append(f"LOST: acknowledged timer instance {ack['instance']} (key {key})")
        elif row[1] != "completed" or fired != 1:
            problems.append(f"TIMER: {ack['instance']} due {ack['due']}: {row[1]}, fired {fired}x")
    problems += [f"TIMER FIRED TWICE: {iid} ({n}x)" for iid, n in s.fired.items() if n > 1]
    return problems


def check(database_url: str, acks: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Compare the database with what the clients were told; return (problems, counts)."""
    s = read_snapshot(database_url.replace("postgresql+psycopg://", "postgresql://"))
    problems = [
        *check_submissions(s, acks),
        *check_projections(database_url, s),
        *check_tasks(s, acks),
        *check_payments(s, acks),
        *check_timers(s, acks),
        *[f"INCIDENT: {iid} {element}: {message[:120]}" for iid, element, message in s.incidents],
    ]
    lags = s.lags
    counts = {
        "dossiers": len(s.dossiers),
        "instances": len(s.instances),
        "ready tasks": sum(len(v) for v in s.ready.values()),
        "completed tasks in audit": len(s.completed_tasks),
        "paid payments": sum(1 for row in s.payments.values() if row[1] == "paid"),
        "receipts": len(s.receipts),
        "bank payments": len(s.bank_paid),
        "timers fired": sum(s.fired.values()),
        "timer lag p50 s": round(lags[len(lags) // 2], 2) if lags else None,
        "timer lag p99 s": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 2) if lags else None,
        "timer lag max s": round(lags[-1], 2) if lags else None,
    }
    return problems, counts


# -- the checker's own test ----------------------------------------------------------------------------------
def corruptions(acks: dict[str, Any]) -> dict[str, str]:
    """SQL that breaks, in a copy of the database, one promise each; the checker must catch every one."""
    code = next(iter(acks["submissions"].values()))["code"]
    task = next(iter(acks["completions"]))
    return {
        "an acknowledged dossier lost": f"DELETE FROM dossiers WHERE code = '{code}'",
        "an acknowledged completion lost": (
            f"DELETE FROM audit WHERE task_id = '{task}' AND action = 'task_completed'"
        ),
        "a task both ready and completed": (
            "INSERT INTO ready_tasks (id, instance_id, element_id, title, lane, created_at) "
            "SELECT task_id, instance_id, element_id, 'x', 'reception', now() FROM audit "
            f"WHERE task_id = '{task}' AND action = 'task_completed'"
        ),
        "a payment counted twice": (
            "INSERT INTO payments (txn_ref, dossier_code, provider, amount, currency, lines, status, "
            "created_at, expires_at, process_advanced) SELECT txn_ref || 'X', dossier_code, provider, "
            "amount, "
            "currency, lines, "
            "'paid', created_at, expires_at, true FROM payments WHERE status = 'paid' LIMIT 1"
        ),
        "an acknowledged payment lost": (
            "UPDATE payments SET status = 'pending' "
            "WHERE id = (SELECT min(id) FROM payments WHERE status = 'paid')"
        ),
        "a dossier without its Idempotency-Key (a duplicate)": (
            "DELETE FROM start_requests "
            f"WHERE instance_id = (SELECT instance_id FROM dossiers WHERE code = '{code}')"
        ),
        "a dossier status out of step with its process": (
            f"UPDATE dossiers SET status = 3 WHERE code = '{code}'"
        ),
        "a gap in the dossier codes": "UPDATE dossier_counters SET last = last + 1",
        "a timer fired twice": (
            "INSERT INTO audit (instance_id, task_id, element_id, action, actor, at, details) "
            "SELECT instance_id, "
            "task_id, element_id, action, actor, at, details FROM audit WHERE action = 'timer_fired' LIMIT 1"
        ),
    }


def prove_checker(database_url: str, acks: dict[str, Any]) -> list[str]:
    """Run the checker on corrupted copies (CREATE DATABASE ... TEMPLATE); return what it missed."""
    base, _, name = database_url.rpartition("/")
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    missed = []
    for i, (what, sql) in enumerate(corruptions(acks).items()):
        copy = f"{name}_corrupt_{i}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {copy}".encode())
            conn.execute(f"CREATE DATABASE {copy} TEMPLATE {name}".encode())
        try:
            with psycopg.connect(f"{admin.rpartition('/')[0]}/{copy}", autocommit=True) as conn:
                conn.execute(
                    b"SET session_replication_role = replica"
                )  # past the foreign keys, as a bug would
                conn.execute(sql.encode())
            problems, _counts = check(f"{base}/{copy}", acks)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {copy}".encode())
        print(
            f"  checker on a copy with {what}: "
            f"{'caught' if problems else 'MISSED'} ({len(problems)} problem(s))"
        )
        if not problems:
            missed.append(what)
    return missed


# -- the run -------------------------------------------------------------------------------------------------
class Run:
    """One fault test: the database, the nodes, the load, the faults, the drain, the check, the report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = ROOT / "var" / f"fault-{time.strftime('%Y%m%d-%H%M%S')}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.pg: PgCluster | None = None
        self.servers: list[Proc] = []
        self.workers: list[Proc] = []
        self.ledger, self.stop = Ledger(), threading.Event()
        self.faults: list[Fault] = []
        self.threads: list[threading.Thread] = []
        self.bases = [f"http://127.0.0.1:{args.port + i}" for i in range(args.servers)]
        self.logins: dict[str, str] = {}
        self.database_url, self.pg_version = args.database_url or "", "(external)"
        if not args.database_url:
            self.pg = PgCluster(args.pg_port).create()  # removed by close(), even if it fails to start
            self.database_url = self.pg.url("motcua")
        self.dsn = self.database_url.replace("postgresql+psycopg://", "postgresql://")
        self.env = {
            **os.environ,
            "MOTCUA_DATABASE_URL": self.database_url,
            "MOTCUA_PAYMENT_SANDBOX": "on",
            "MOTCUA_VNPAY_TMN_CODE": "FAULT001",
            "MOTCUA_VNPAY_HASH_SECRET": secrets.token_hex(32),
            "MOTCUA_LINK_SECRET": secrets.token_hex(32),
            "MOTCUA_PAYMENT_ATTEMPT_MINUTES": "1",  # attempts no IPN settled are reconciled ~3 minutes later
            "MOTCUA_SCHEDULER": "off",  # the API nodes serve; the worker processes run the jobs
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def procs(self) -> list[Proc]:
        return self.servers + self.workers

    def restart_pg(self) -> float:
        if self.pg is not None:
            return self.pg.restart("immediate")
        began = time.monotonic()
        subprocess.run(shlex.split(self.args.restart_command), check=True)
        return time.monotonic() - began

    def prepare(self) -> None:
        """Start the private PostgreSQL; migrate and seed as an operator does; police officials; the timer
        process."""
        began = time.monotonic()
        if self.pg is not None:
            self.pg.start()
            self.pg.execute("CREATE DATABASE motcua")
            self.pg_version = self.pg.version()
        motcua(self.env, "db", "upgrade")
        seeded = motcua(self.env, "seed", "--demo")
        self.logins = {u["username"]: u["password"] for u in seeded["demo_users"]}
        for username, role, agency in POLICE_OFFICIALS:
            motcua(self.env, "users", "add", username, "--role", role, "--name", username, "--agency", agency,
                   "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
            self.logins[username] = PASSWORD
        motcua(self.env, "deploy", str(TIMER_BPMN))
        print(f"database migrated and seeded in {time.monotonic() - began:.1f} s: {self.database_url}")

    def start_nodes(self) -> None:
        args = self.args
        for i, base in enumerate(self.bases):
            node_env = {
                **self.env,
                "MOTCUA_PUBLIC_URL": base,
                "MOTCUA_VNPAY_PAY_URL": f"{base}/sandbox/vnpay/paymentv2/vpcpay.html",
                "MOTCUA_VNPAY_API_URL": f"{base}/sandbox/vnpay/merchant_webapi/api/transaction",
            }
            argv = [*MOTCUA, "serve", "--port", str(args.port + i), "--workers", str(args.server_workers)]
            self.servers.append(Proc(f"api{i + 1}", argv, node_env, self.work / f"api{i + 1}.log"))
        api = f"{self.bases[0]}/sandbox/vnpay/merchant_webapi/api/transaction"  # the sandbox's querydr
        for i in range(args.workers):
            argv = [*MOTCUA, "worker", "--tick", "0.5", "--worker-id", f"worker{i + 1}"]
            env = {**self.env, "MOTCUA_VNPAY_API_URL": api}
            self.workers.append(Proc(f"worker{i + 1}", argv, env, self.work / f"worker{i + 1}.log"))
        for proc in self.procs:
            proc.start()
        for base in self.bases:
            wait_healthy(base)
        print(f"{args.servers} API nodes x {args.server_workers} server workers, {args.workers} workers up")

    def client(self, user: str) -> Client:
        return Client(self.bases, self.ledger, user, self.logins[user], self.stop)

    def start_load(self) -> None:
        level4: collections.deque[str] = collections.deque()
        jobs: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
            (citizen_loop, (self.client("demo.applicant"), level4, self.args.rate))
            for _ in range(self.args.citizens)
        ]
        officials = (
            "demo.reception",
            "demo.specialist",
            "demo.leader",
            *[u for u, _r, _a in POLICE_OFFICIALS],
        )
        jobs += [(official_loop, (self.client(user),)) for user in officials]
        jobs.append((payer_loop, (self.client("demo.applicant"), level4)))
        jobs.append((timer_loop, (self.client("demo.integrator"), self.args.timer_lead)))
        self.threads = [threading.Thread(target=target, args=args) for target, args in jobs]
        for thread in self.threads:
            thread.start()

    def inject_faults(self) -> None:
        """At 20 %, 45 % and 70 % of the load: kill a server, kill the workers, restart PostgreSQL."""
        load_began = time.monotonic()

        def at(fraction: float) -> Fault:
            self.stop.wait(max(0.0, load_began + fraction * self.args.duration - time.monotonic()))
            return Fault("", time.monotonic())

        probe = Client(
            self.bases, self.ledger, "demo.reception", self.logins["demo.reception"], threading.Event()
        )
        if not probe._login():
            raise SystemExit("the probe cannot log in")
        # 1. One API node killed with everything in flight; its supervisor brings it back 2 s later.
        fault = at(0.2)
        fault.name = "SIGKILL api1 (server master + workers), restarted after 2 s"
        self.servers[0].kill()
        time.sleep(2)
        self.servers[0].start()
        wait_healthy(self.bases[0])
        fault.recovered_after, fault.detail = time.monotonic() - fault.at, "until api1 answers /healthz again"
        self.faults.append(fault)
        # 2. Every worker killed, restarted 2 s later: they pick up the jobs (leases of the dead ones expire).
        fault = at(0.45)
        fault.name = "SIGKILL both workers, restarted after 2 s"
        for proc in self.workers:
            proc.kill()
        time.sleep(2)
        for proc in self.workers:
            proc.start()
        restarted_at = time.time()
        if wait_until(lambda: timer_fired_since(self.dsn, restarted_at)) is not None:
            fault.recovered_after = time.monotonic() - fault.at
        fault.detail = "until the restarted workers fire a timer (timers fall due every 0.3 s)"
        self.faults.append(fault)
        # 3. PostgreSQL restarted (immediate: a crash and recovery) under load; nothing else is restarted.
        fault = at(0.7)
        fault.name = "PostgreSQL pg_ctl restart -m immediate (servers, workers untouched)"
        took = self.restart_pg()
        up_at, token = time.time(), probe.token or ""
        api = wait_until(lambda: all(any_db_request(b, token) for b in self.bases))
        api_after = "NOT" if api is None else f"{time.monotonic() - fault.at:.1f} s"
        if api is not None and wait_until(lambda: timer_fired_since(self.dsn, up_at)) is not None:
            fault.recovered_after = time.monotonic() - fault.at
        fault.detail = (
            f"pg_ctl restart took {took:.1f} s; both servers answered from the database {api_after} "
            "after the fault; then until the workers fire a timer"
        )
        self.faults.append(fault)
        at(1.0)
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
        self.load_took = time.monotonic() - load_began
        for proc in self.procs:
            if proc.popen is not None and proc.popen.poll() is not None:
                self.ledger.refused(f"{proc.name} exited by itself with {proc.popen.returncode}")

    def drain(self) -> tuple[bool, float]:
        """Wait for the last timers to fire and for the payments whose IPN was lost to be reconciled (an
        attempt is looked up 2 minutes after its expiry, here 1 minute)."""
        began = time.monotonic()
        last_due = max((datetime.fromisoformat(t["due"]) for t in self.ledger.timers.values()), default=None)

        def settled() -> bool:
            if last_due is not None and datetime.now(UTC) < last_due + timedelta(seconds=1):
                return False
            with psycopg.connect(self.dsn) as conn:
                unsettled = conn.execute(
                    "SELECT count(*) FROM sandbox_transactions s "
                    "LEFT JOIN payments p ON p.txn_ref = s.txn_ref "
                    "WHERE s.status = 'paid' AND (p.status IS DISTINCT FROM 'paid' OR NOT p.process_advanced)"
                ).fetchone()
                due = conn.execute("SELECT count(*) FROM timers WHERE due_at <= now()").fetchone()
            return unsettled == (0,) and due == (0,)

        done = wait_until(settled, self.args.drain) is not None
        for proc in self.procs:
            proc.stop()
        return done, time.monotonic() - began

    def verify(self) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
        acks = self.ledger.to_json()
        (self.args.acks or self.work / "acks.json").write_text(json.dumps(acks, ensure_ascii=False, indent=1))
        problems, counts = check(self.database_url, acks)
        if self.ledger.key_conflicts:
            problems.append(f"DUPLICATE: {len(self.ledger.key_conflicts)} key(s) answered with two dossiers")
        problems += [f"REFUSED: {what}" for what in self.ledger.refusals]
        problems += [f"NOT RECOVERED: {f.name}" for f in self.faults if f.recovered_after is None]
        return problems, counts, acks

    def report(self, drained: tuple[bool, float], counts: dict[str, Any], problems: list[str]) -> None:
        args, ledger = self.args, self.ledger
        print("\n== fault test ==")
        print(
            f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"PostgreSQL {self.pg_version}"
        )
        print(
            f"load: {self.load_took:.0f} s, {args.citizens} citizens (~{args.rate}/s each), 6 officials, "
            f"1 payer, 1 integrator starting timers; {args.servers} API nodes x {args.server_workers} "
            f"server workers, {args.workers} workers"
        )
        level4 = sum(1 for s in ledger.submissions.values() if s["level"] == 4)
        print(
            f"acknowledged: {len(ledger.submissions)} submissions ({level4} level 4), "
            f"{len(ledger.completions)} task completions ({ledger.claims} claims), {ledger.bank_choices} "
            f"payments at the bank, {len(ledger.ipns)} IPNs, {len(ledger.timers)} timer starts"
        )
        errors = collections.Counter(kind for _t, kind in ledger.errors)
        print(f"client-side errors (each retried): {dict(errors) or 'none'}")
        for i, fault in enumerate(self.faults):
            end = self.faults[i + 1].at if i + 1 < len(self.faults) else float("inf")
            seen = [(t, k) for t, k in ledger.errors if fault.at <= t < end]
            last = max((t for t, _k in seen), default=None)
            window = f"the last {last - fault.at:.1f} s after the fault" if last else "none"
            recovered = "NOT RECOVERED" if fault.recovered_after is None else f"{fault.recovered_after:.1f} s"
            kinds = dict(collections.Counter(k for _t, k in seen))
            print(f"fault: {fault.name}\n   recovered in {recovered} ({fault.detail})")
            print(f"   clients saw {len(seen)} errors {kinds}, {window}")
        print(f"drain: {'settled' if drained[0] else 'NOT settled'} in {drained[1]:.1f} s")
        print("database:", ", ".join(f"{k} {v}" for k, v in counts.items()))
        for problem in problems:
            print("  FAIL", problem)
        if args.report:
            faults = [
                {"name": f.name, "recovered_after": f.recovered_after, "detail": f.detail}
                for f in self.faults
            ]
            figures = {
                "submissions": len(ledger.submissions),
                "completions": len(ledger.completions),
                "ipns": len(ledger.ipns),
                "timers": len(ledger.timers),
                "errors": dict(errors),
                "counts": counts,
                "problems": problems,
                "faults": faults,
            }
            args.report.write_text(json.dumps(figures, ensure_ascii=False, indent=1))

    def close(self) -> None:
        self.stop.set()
        for proc in self.procs:
            proc.kill()
        if self.pg is not None:
            if self.args.keep:
                print(
                    f"private PostgreSQL kept: {self.pg.url('motcua')} "
                    f"(in {self.pg.root}; remove it yourself)"
                )
            else:
                self.pg.remove()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=90, help="seconds of load (faults at 20, 45, 70 %%)"
    )
    parser.add_argument("--citizens", type=int, default=4)
    parser.add_argument("--rate", type=float, default=2.0, help="submissions per second per citizen")
    parser.add_argument(
        "--timer-lead", type=float, default=3.0, help="seconds from a timer's start to its due"
    )
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--server-workers", "--gunicorn-workers", dest="server_workers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18200, help="first HTTP port (one per server)")
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument(
        "--database-url", help="an existing, fresh PostgreSQL database instead of a private one"
    )
    parser.add_argument("--restart-command", help="with --database-url: the command that restarts its server")
    parser.add_argument("--drain", type=float, default=240, help="seconds at most for the workers to settle")
    parser.add_argument("--keep", action="store_true", help="leave the private PostgreSQL running at the end")
    parser.add_argument("--report", type=Path, help="also write the report as JSON here")
    parser.add_argument(
        "--acks", type=Path, help="where to write (with --check-only: read) the acknowledgements"
    )
    parser.add_argument("--check-only", metavar="DATABASE_URL", help="only check DATABASE_URL against --acks")
    parser.add_argument("--no-prove", action="store_true", help="skip the checker's run on corrupted copies")
    args = parser.parse_args()

    if args.check_only:
        if not args.acks:
            parser.error("--check-only needs --acks")
        problems, counts = check(args.check_only, json.loads(args.acks.read_text()))
        print(json.dumps(counts, indent=2))
        for problem in problems:
            print("  FAIL", problem)
        print("RESULT:", "FAIL" if problems else "PASS", f"({len(problems)} problem(s))")
        return 1 if problems else 0
    if args.database_url and not args.restart_command:
        parser.error("--database-url needs --restart-command (the PostgreSQL restart is part of the test)")

    run = Run(args)  # creates the private cluster's folder; close() removes it whatever happens next
    try:
        run.prepare()
        run.start_nodes()
        run.start_load()
        run.inject_faults()
        drained = run.drain()
        problems, counts, acks = run.verify()
        if not drained[0]:
            problems.append("NOT SETTLED: timers or payments still pending after the drain")
        run.report(drained, counts, problems)
        if not problems and not args.no_prove and run.pg is not None:
            print("the checker itself, on copies of this database each broken on purpose:")
            problems += [f"CHECKER MISSED: {what}" for what in prove_checker(run.database_url, acks)]
        print("RESULT:", "FAIL" if problems else "PASS", f"({len(problems)} problem(s)); logs in {run.work}")
        return 1 if problems else 0
    finally:
        run.close()


if __name__ == "__main__":
    sys.exit(main())
