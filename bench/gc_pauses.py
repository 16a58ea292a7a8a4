"""The garbage collector in an API process: how often it runs, how long it pauses, what memory does.

A motcua process keeps up to ``MOTCUA_INSTANCE_CACHE`` live workflows in memory (2,000 by default), each a web
of a few hundred objects with reference cycles.  Python's collector walks every object it tracks in a full
(oldest-generation) collection, and with its default thresholds (700, 10, 10) a busy process runs one every
few hundred requests: measured here, 100-190 ms each, a pause for every request of the process at that
moment.  motcua therefore (1) breaks the cycles of every instance the cache lets go
(``engine.runtime.dispose``) so that reference counting frees it at once, and (2) sets higher thresholds in
``motcua serve`` and ``motcua worker`` (``MOTCUA_GC_THRESHOLDS``, default 2000,20,250; 10000,10,100 before the
tenth session, whose young and middle collections paused up to 16 and 60 ms).

This script plays task pages (submit a dossier, then GET, claim and complete its reception task) through the
Flask app in a fresh process per configuration, on PostgreSQL, and prints per configuration: collections and
pause time per generation (total and longest), CPU seconds, objects tracked and resident memory at the end,
and what a final full collection still found unreachable (garbage that waited for it).

    .venv/bin/python bench/gc_pauses.py                      # the four configurations below, 2,500 pages each
    .venv/bin/python bench/gc_pauses.py --pages 1000 --cache 500

Configurations, in one run: Python's default thresholds without and with ``dispose``; the eighth session's
thresholds (10000,10,100) without and with ``dispose``; the shipped ones (2000,20,250) with it.  The reference
is the first (what a process did before ``dispose``).  ``--thresholds A,B,C ...`` adds configurations,
``--only TEXT`` keeps the ones whose label contains TEXT.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGS = (
    ("Python defaults, no dispose", "700,10,10", False),
    ("Python defaults + dispose", "700,10,10", True),
    ("thresholds 10000,10,100, no dispose", "10000,10,100", False),
    ("thresholds 10000,10,100 + dispose", "10000,10,100", True),
    ("motcua thresholds + dispose (shipped)", "2000,20,250", True),
)


def play(url: str, passwords: dict[str, str], pages: int, thresholds: str, dispose: bool) -> dict[str, Any]:
    """Run ``pages`` task pages in this process; return the collector's and memory's figures."""
    os.environ["MOTCUA_DATABASE_URL"] = url
    os.environ["MOTCUA_SCHEDULER"] = "off"
    import engine.runtime as runtime
    from api import create_app
    from bench.engine_overhead import collector_as_served
    from bench.http_load import REVIEW, SUBMISSION
    from motcua.settings import Settings

    if not dispose:
        runtime.dispose = lambda _instance: None  # type: ignore[assignment]  # the behaviour before
    app = create_app(Settings.from_env())
    client = app.test_client()
    collector_as_served(thresholds)  # as motcua serve does after building the app
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    began = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - began[0])

    def login(user: str) -> dict[str, str]:
        answer = client.post("/api/v1/auth/token", json={"username": user, "password": passwords[user]})
        return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}

    applicant, official = login("demo.applicant"), login("demo.reception")
    gc.callbacks.append(watch)
    cpu = time.process_time()
    for n in range(pages):
        headers = {**applicant, "Content-Type": "application/json", "Idempotency-Key": f"gc-{n}"}
        submitted = client.post("/api/v1/dossiers", data=SUBMISSION, headers=headers)
        assert submitted.status_code == 201, submitted.get_json()
        path = f"/api/v1/tasks/{submitted.get_json()['tasks'][0]['id']}"
        got = client.get(path, headers=official)
        client.post(f"{path}/claim", headers=official)
        done = client.post(
            f"{path}/complete",
            data=REVIEW,
            headers={**official, "Content-Type": "application/json", "If-Match": got.headers["ETag"]},
        )
        assert done.status_code == 200, done.get_json()
    cpu = time.process_time() - cpu
    gc.callbacks.remove(watch)
    tracked = len(gc.get_objects())
    rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    unreachable = gc.collect()
    return {
        "pauses": {str(g): [len(p), sum(p), max(p, default=0.0)] for g, p in pauses.items()},
        "cpu": cpu,
        "tracked": tracked,
        "rss": rss,
        "unreachable": unreachable,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=2500, help="task pages per configuration")
    parser.add_argument("--cache", type=int, default=1000, help="MOTCUA_INSTANCE_CACHE of the process")
    parser.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    parser.add_argument("--only", help="run only the configurations whose label contains this text")
    parser.add_argument(
        "--thresholds", nargs="*", default=[], help="also these thresholds (e.g. 3000,10,100), with dispose"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from engine.errors import ValidationError
    from motcua.settings import Settings

    for extra in args.thresholds:
        try:
            Settings.from_env({"MOTCUA_GC_THRESHOLDS": extra})
        except ValidationError as error:
            parser.error(f"--thresholds {extra}: {error.message}")
    if args.child:
        url, passwords, thresholds, dispose = json.loads(args.child)
        print(json.dumps(play(url, passwords, args.pages, thresholds, dispose)))
        return
    from bench.http_load import reset_database, seed

    print(
        f"{args.pages} task pages (submit, GET, claim, complete) per configuration, in-process Flask app on "
        f"PostgreSQL, instance cache {args.cache}; a fresh process and database per configuration"
    )
    header = (
        f"{'configuration':<38} {'gen0 n/ms/max':>16} {'gen1 n/ms/max':>16} {'gen2 n/ms/max':>18} "
        f"{'CPU s':>6} {'objects':>8} {'RSS MB':>7} {'left':>6}"
    )
    print(header)
    chosen = [config for config in CONFIGS if args.only is None or args.only in config[0]]
    chosen += [(f"thresholds {extra} + dispose", extra, True) for extra in args.thresholds]
    for label, thresholds, dispose in chosen:
        url = reset_database(args.server_url, "motcua_gc")
        env = {**os.environ, "MOTCUA_DATABASE_URL": url}
        passwords = seed(env)
        child = json.dumps([url, passwords, thresholds, dispose])
        out = subprocess.run(
            [sys.executable, __file__, "--pages", str(args.pages), "--child", child],
            env={**env, "MOTCUA_INSTANCE_CACHE": str(args.cache)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        cells = []
        for g in ("0", "1", "2"):
            n, total, longest = r["pauses"][g]
            cells.append(f"{n}/{total * 1000:.0f}/{longest * 1000:.1f}")
        print(
            f"{label:<38} {cells[0]:>16} {cells[1]:>16} {cells[2]:>18} {r['cpu']:6.1f} {r['tracked']:8,} "
            f"{r['rss'] / 1e6:7.0f} {r['unreachable']:6,}"
        )
    print(
        "n/ms/max: collections of that generation, their total and longest pause in ms (wall clock);\n"
        "objects: tracked by the collector at the end;\n"
        "left: unreachable objects a final full collection freed"
    )


if __name__ == "__main__":
    main()
