"""The multi-machine deployment of docs/DEPLOY.md, played on this machine, with a short load and a failover.

What runs (every piece a real process, on 127.0.0.1, removed at the end):

- a primary PostgreSQL (private initdb, port 55433) and a streaming standby made with ``pg_basebackup -R``
  (port 55434); never the machine's shared PostgreSQL;
- three API nodes, ``motcua serve`` (granian, 2 workers each, MOTCUA_SCHEDULER=off), ports 18210-18212, each
  given BOTH database hosts with ``target_session_attrs=read-write`` (libpq connects to whichever is primary);
- nginx in front of them (the config written from deploy/nginx/motcua.conf's upstream and proxy settings,
  without TLS), port 18280;
- two worker nodes, ``motcua worker`` (timers, retries, webhooks, deadlines, payment reconciliation).

Then: a load through the proxy (citizens submit level-3 dossiers with an Idempotency-Key, officials claim and
complete their tasks), the requests per API node counted from nginx's access log, the standby's replay lag
sampled every second; then a failover: the primary is killed (``pg_ctl stop -m immediate``), the standby
promoted (``pg_ctl promote``), and the time until the proxy serves writes again is measured, with no node
restarted; every dossier acknowledged before is checked on the promoted server.

    apt-get install -y nginx-light                  # once, as root (Debian's nginx)
    .venv/bin/python bench/cluster.py               # ~2 minutes
    .venv/bin/python bench/cluster.py --duration 60 --clients 8 --no-failover
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402
from _pgcluster import PgCluster  # noqa: E402
from fault_test import Proc, motcua, wait_healthy  # noqa: E402

from tests.dossiers.conftest import APPLICANT, COPY_FORM  # noqa: E402

LEVEL3 = "2.000815"
TASK_DATA: dict[str, dict[str, Any]] = {
    "review": {"decision": "accept"},
    "appraise": {"appraisal_opinion": "Đủ điều kiện", "draft_result": "Bản sao chứng thực"},
    "approve": {"approval": "approve", "approval_note": ""},
    "desk_result": {"fee_paid": True, "handed_over_to": APPLICANT["name"]},
}

NGINX_CONF = """\
# Written by bench/cluster.py from deploy/nginx/motcua.conf (plain HTTP on loopback: no certificate here).
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    log_format upstream '$remote_addr [$time_local] "$request" $status $upstream_addr $request_time';
    access_log {root}/access.log upstream;
    upstream motcua_api {{
        least_conn;
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 110m;
        location / {{
            proxy_pass http://motcua_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""


class Nginx:
    """Debian's nginx with its own prefix, config, logs and pid file (no system service is touched)."""

    def __init__(self, port: int, upstreams: list[str]) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise SystemExit("nginx is not installed: apt-get install -y nginx-light (as root)")
        self.binary, self.port = binary, port
        self.root = Path(tempfile.mkdtemp(prefix="motcua-nginx-"))
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.root / "tmp" / sub).mkdir(parents=True)
            (self.root / "tmp" / sub).chmod(0o1777)  # nginx's workers run as nobody when started as root
        self.root.chmod(0o755)
        servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=5s;" for u in upstreams)
        self.conf = self.root / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(root=self.root, servers=servers, port=port))
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [self.binary, "-p", str(self.root), "-c", str(self.conf), "-g", "daemon off;"]
        subprocess.run([*argv[:-2], "-t", "-q"], check=True)
        self.popen = subprocess.Popen(
            argv, stderr=(self.root / "stderr.log").open("wb"), start_new_session=True
        )
        wait_healthy(f"http://127.0.0.1:{self.port}")

    def requests_per_node(self) -> collections.Counter[str]:
        counts: collections.Counter[str] = collections.Counter()
        for line in (self.root / "access.log").read_text().splitlines():
            upstream = line.split()[-2]
            for node in upstream.split(", "):  # a retried request names each node it tried
                counts[node] += 1
        return counts

    def remove(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGQUIT)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


class Load:
    """Citizens submitting and officials completing, through the proxy, until stopped."""

    def __init__(self, base: str, logins: dict[str, str]) -> None:
        self.base, self.logins = base, logins
        self.stop = threading.Event()
        self.acked: dict[str, str] = {}  # idempotency key -> dossier code
        self.completions = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.latencies: list[float] = []
        self.lock = threading.Lock()

    def token(self, user: str) -> str:
        while True:
            try:
                answer = requests.post(
                    f"{self.base}/api/v1/auth/token",
                    json={"username": user, "password": self.logins[user]},
                    timeout=20,
                )
                if answer.status_code == 200:
                    return str(answer.json()["access_token"])
            except requests.RequestException:
                pass
            time.sleep(0.5)

    def call(self, session: requests.Session, token: str, method: str, path: str, **kwargs: Any) -> Any:
        """Send, retrying failures (same request, same Idempotency-Key) for up to 60 s."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                headers = {"Authorization": f"Bearer {token}", **kwargs.get("headers", {})}
                options = {k: v for k, v in kwargs.items() if k != "headers"}
                answer = session.request(method, self.base + path, headers=headers, timeout=30, **options)
            except requests.RequestException as exc:
                with self.lock:
                    self.errors[type(exc).__name__] += 1
                time.sleep(0.3)
                continue
            if answer.status_code < 500:
                with self.lock:
                    self.latencies.append(time.perf_counter() - began)
                return answer
            with self.lock:
                self.errors[f"http {answer.status_code}"] += 1
            time.sleep(0.3)
        return None

    def citizen(self) -> None:
        session, token = requests.Session(), self.token("demo.applicant")
        body = {"procedure_code": LEVEL3, "applicant": APPLICANT, "form_data": COPY_FORM}
        while not self.stop.is_set():
            key = f"cluster-{uuid.uuid4().hex}"
            answer = self.call(
                session, token, "POST", "/api/v1/dossiers", json=body, headers={"Idempotency-Key": key}
            )
            if answer is not None and answer.status_code in (200, 201):
                with self.lock:
                    self.acked[key] = answer.json()["code"]
            self.stop.wait(0.2)

    def official(self, user: str) -> None:
        session, token = requests.Session(), self.token(user)
        while not self.stop.is_set():
            page = self.call(session, token, "GET", "/api/v1/tasks?per_page=10")
            items = page.json()["items"] if page is not None and page.status_code == 200 else []
            for task in items:
                data = TASK_DATA.get(task["element_id"])
                if data is None or self.stop.is_set():
                    continue
                self.call(session, token, "POST", f"/api/v1/tasks/{task['id']}/claim")
                done = self.call(
                    session, token, "POST", f"/api/v1/tasks/{task['id']}/complete", json={"data": data}
                )
                if done is not None and done.status_code == 200:
                    with self.lock:
                        self.completions += 1
            if not items:
                self.stop.wait(0.5)

    def run(self, citizens: int) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.citizen) for _ in range(citizens)]
        threads += [
            threading.Thread(target=self.official, args=(user,))
            for user in ("demo.reception", "demo.specialist", "demo.leader")
        ]
        for thread in threads:
            thread.start()
        return threads


def replication(primary: PgCluster, standby: PgCluster) -> dict[str, Any]:
    """The standby as the primary sees it (pg_stat_replication) and as it sees itself."""
    rows = primary.execute(
        "SELECT state, sync_state, pg_wal_lsn_diff(sent_lsn, replay_lsn), "
        "extract(epoch from coalesce(replay_lag, interval '0')) FROM pg_stat_replication"
    )
    [(recovering, behind)] = standby.execute(
        "SELECT pg_is_in_recovery(), extract(epoch from now() - pg_last_xact_replay_timestamp())"
    )
    state, sync, lag_bytes, lag_seconds = rows[0] if rows else (None, None, None, None)
    return {
        "state": state,
        "sync": sync,
        "lag_bytes": int(lag_bytes or 0),
        "replay_lag_s": float(lag_seconds or 0),
        "in_recovery": recovering,
        "since_last_replay_s": float(behind or 0),
    }


class Cluster:
    """The demonstration's machines: PostgreSQL primary and standby, API nodes, worker nodes, the proxy."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = ROOT / "var" / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.primary: PgCluster | None = None
        self.standby: PgCluster | None = None
        self.nginx: Nginx | None = None
        self.procs: list[Proc] = []
        self.upstreams = [f"127.0.0.1:{args.port + i}" for i in range(args.nodes)]
        self.proxy = f"http://127.0.0.1:{args.proxy_port}"
        self.logins: dict[str, str] = {}

    def start(self) -> tuple[PgCluster, PgCluster]:
        args, began = self.args, time.monotonic()
        primary = self.primary = PgCluster(args.pg_ports[0]).create(replication=True)
        primary.start()
        primary.execute("CREATE DATABASE motcua")
        standby = self.standby = PgCluster.standby_of(primary, args.pg_ports[1])
        standby.start()
        state = replication(primary, standby)["state"]
        print(f"PostgreSQL {primary.version()}: primary :{primary.port}, standby :{standby.port} ({state})")
        # Every node is given both hosts; libpq picks the one that accepts writes (after a failover: the
        # other one).
        database_url = (
            f"postgresql+psycopg://postgres@/motcua?host=127.0.0.1:{primary.port}"
            f"&host=127.0.0.1:{standby.port}&target_session_attrs=read-write&connect_timeout=3"
        )
        env = {
            **os.environ,
            "MOTCUA_DATABASE_URL": database_url,
            "MOTCUA_SCHEDULER": "off",
            "MOTCUA_PROXY_HOPS": "1",  # nginx in front: believe its X-Forwarded-For
            "MOTCUA_LINK_SECRET": uuid.uuid4().hex * 2,
            "MOTCUA_PUBLIC_URL": self.proxy,
            "PYTHONUNBUFFERED": "1",
        }
        motcua(env, "db", "upgrade")  # once, from one place, before any node starts
        seeded = motcua(env, "seed", "--demo")
        self.logins = {u["username"]: u["password"] for u in seeded["demo_users"]}
        serve = [sys.executable, "-m", "motcua.cli", "serve", "--workers", str(args.server_workers)]
        for i, upstream in enumerate(self.upstreams):
            argv = [*serve, "--port", upstream.split(":")[1]]
            self.procs.append(Proc(f"api{i + 1}", argv, env, self.work / f"api{i + 1}.log"))
        for i in range(args.workers):
            argv = [sys.executable, "-m", "motcua.cli", "worker", "--worker-id", f"worker{i + 1}"]
            self.procs.append(Proc(f"worker{i + 1}", argv, env, self.work / f"worker{i + 1}.log"))
        for proc in self.procs:
            proc.start()
        for upstream in self.upstreams:
            wait_healthy(f"http://{upstream}")
        self.nginx = Nginx(args.proxy_port, self.upstreams)
        self.nginx.start()
        print(
            f"{args.nodes} API nodes x {args.server_workers} server workers behind nginx {self.proxy}, "
            f"{args.workers} worker nodes; up in {time.monotonic() - began:.1f} s"
        )
        return primary, standby

    def load(self, primary: PgCluster, standby: PgCluster) -> tuple[Load, list[dict[str, Any]], float]:
        """Run the load for --duration seconds, sampling the standby's lag each second."""
        load = Load(self.proxy, self.logins)
        threads = load.run(self.args.clients)
        samples = []
        began = time.monotonic()
        while time.monotonic() - began < self.args.duration:
            samples.append(replication(primary, standby))
            time.sleep(1)
        load.stop.set()
        for thread in threads:
            thread.join(timeout=90)
        return load, samples, time.monotonic() - began

    def report_load(self, load: Load, samples: list[dict[str, Any]], took: float) -> None:
        assert self.nginx is not None and self.primary is not None
        nginx_version = subprocess.run(
            [self.nginx.binary, "-v"], capture_output=True, text=True
        ).stderr.strip()
        per_node = self.nginx.requests_per_node()
        total = sum(per_node.values())
        lat = sorted(load.latencies)
        print("\n== cluster demonstration ==")
        print(
            f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"PostgreSQL {self.primary.version()}, {nginx_version}"
        )
        print(
            f"load: {took:.0f} s through the proxy, {self.args.clients} citizens + 3 officials: "
            f"{len(load.acked)} dossiers submitted, {load.completions} tasks completed, {len(lat)} requests "
            f"(p50 {statistics.median(lat) * 1000:.0f} ms, "
            f"p99 {lat[int(0.99 * (len(lat) - 1))] * 1000:.0f} ms), "
            f"client errors {dict(load.errors) or 'none'}"
        )
        print("requests per API node (nginx access log, least_conn):")
        for upstream in self.upstreams:
            share = per_node[upstream] / total if total else 0
            print(f"  {upstream}  {per_node[upstream]:6d}  {share:6.1%}")
        lags = [s["replay_lag_s"] for s in samples]
        behind = [s["lag_bytes"] for s in samples]
        print(
            f"standby: {samples[-1]['state']} ({samples[-1]['sync']}), replay lag sampled each second: "
            f"p50 {statistics.median(lags) * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms; "
            f"WAL behind p50 {statistics.median(behind):.0f} B, max {max(behind)} B"
        )

    def failover(self, load: Load, primary: PgCluster, standby: PgCluster) -> list[str]:
        """Lose the primary without warning, promote the standby, write through the proxy again."""
        deadline = time.monotonic() + 30
        while replication(primary, standby)["lag_bytes"] and time.monotonic() < deadline:
            time.sleep(0.2)  # asynchronous replication: what the standby has not replayed would be lost
        acked = dict(load.acked)
        failed_at = time.monotonic()
        primary.stop("immediate")
        standby.promote()
        promoted = time.monotonic() - failed_at
        body = {"procedure_code": LEVEL3, "applicant": APPLICANT, "form_data": COPY_FORM}
        headers = {"Idempotency-Key": f"after-failover-{uuid.uuid4().hex}"}
        citizen = load.token("demo.applicant")
        answer = load.call(
            requests.Session(), citizen, "POST", "/api/v1/dossiers", json=body, headers=headers
        )
        served = time.monotonic() - failed_at
        found = {row[0] for row in standby.execute("SELECT code FROM dossiers", "motcua")}
        missing = sorted(set(acked.values()) - found)
        print(
            f"failover: primary killed (pg_ctl stop -m immediate), standby promoted in {promoted:.1f} s; "
            f"first dossier written through the proxy {served:.1f} s after the kill (no node restarted)"
        )
        print(
            f"          {len(acked)} dossiers acknowledged before: {len(acked) - len(missing)} on the "
            f"promoted server, {len(missing)} missing"
        )
        problems = []
        if answer is None or answer.status_code != 201:
            problems.append(f"no write through the proxy after the failover: {answer and answer.status_code}")
        if missing:
            problems.append(
                f"{len(missing)} acknowledged dossier(s) missing after the failover: {missing[:5]}"
            )
        return problems

    def lockout_probe(self) -> list[str]:
        """The nodes believe the proxy's X-Forwarded-For (MOTCUA_PROXY_HOPS=1): five wrong passwords from one
        client address hold back that address, not another person's login through the same proxy.  The two
        clients are told apart by their loopback source address (127.0.0.2 and 127.0.0.3)."""
        port = int(self.proxy.rsplit(":", 1)[1])

        def login(source: str, body: dict[str, str]) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20, source_address=(source, 0))
            try:
                payload = json.dumps(body)
                conn.request("POST", "/api/v1/auth/token", payload, {"Content-Type": "application/json"})
                return conn.getresponse().status
            finally:
                conn.close()

        wrong = {"username": "ke.do.mat.khau", "password": "sai-mat-khau-0000"}
        for _ in range(5):
            login("127.0.0.2", wrong)
        right = {"username": "demo.reception", "password": self.logins["demo.reception"]}
        guesser, other = login("127.0.0.2", right), login("127.0.0.3", right)
        verdict = "PASS" if (guesser, other) == (429, 200) else "FAIL"
        print(
            "client address behind the proxy: after 5 wrong passwords from 127.0.0.2, a right password gets "
            f"HTTP {guesser} from there and HTTP {other} from 127.0.0.3 ({verdict}: 429 and 200 expected)"
        )
        return [] if verdict == "PASS" else ["the login lockout does not tell clients behind the proxy apart"]

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        if self.nginx is not None:
            self.nginx.remove()
        for server in (self.standby, self.primary):
            if server is not None:
                server.remove()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=40, help="seconds of load")
    parser.add_argument("--clients", type=int, default=4, help="citizens submitting at once")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--server-workers", "--gunicorn-workers", dest="server_workers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18210, help="first API node port")
    parser.add_argument("--proxy-port", type=int, default=18280)
    parser.add_argument(
        "--pg-ports", type=int, nargs=2, default=(55433, 55434), metavar=("PRIMARY", "STANDBY")
    )
    parser.add_argument("--no-failover", action="store_true", help="skip killing the primary at the end")
    args = parser.parse_args()

    cluster = Cluster(args)
    try:
        primary, standby = cluster.start()
        load, samples, took = cluster.load(primary, standby)
        cluster.report_load(load, samples, took)
        problems = [] if args.no_failover else cluster.failover(load, primary, standby)
        problems += [
            f"{proc.name} exited with {proc.popen.returncode}"
            for proc in cluster.procs
            if proc.popen is not None and proc.popen.poll() is not None
        ]
        problems += cluster.lockout_probe()
        for problem in problems:
            print("  FAIL", problem)
        print("RESULT:", "FAIL" if problems else "PASS", f"; logs in {cluster.work}")
        return 1 if problems else 0
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
