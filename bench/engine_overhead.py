"""Engine overhead: the same 10-user-task process through our facade (durable) and raw SpiffWorkflow (memory).

Both run in one process, in alternating rounds, so the ratio is fair on a noisy machine.

    .venv/bin/python bench/engine_overhead.py                       # SQLite file under a temp dir
    .venv/bin/python bench/engine_overhead.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Prints instances/s for each side, their ratio, the p50/p95 latency of one task completion through the
engine, and the commits per instance.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import text

from engine.facade import Engine
from engine.store import Store, create_db_engine
from handlers import default_registry
from motcua.schema import upgrade

TASKS = 10
KEY = "ten_user_tasks"


def ten_task_bpmn() -> bytes:
    """A straight line of ten user tasks."""
    nodes = "".join(f'<bpmn:userTask id="step_{i}" name="Bước {i}"/>' for i in range(1, TASKS + 1))
    chain = ["start", *[f"step_{i}" for i in range(1, TASKS + 1)], "end"]
    flows = "".join(
        f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
        for i, (a, b) in enumerate(itertools.pairwise(chain))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" '
        'targetNamespace="http://motcua.gov.vn/bench">'
        f'<bpmn:process id="{KEY}" isExecutable="true"><bpmn:startEvent id="start"/>{nodes}'
        f'<bpmn:endEvent id="end"/>{flows}</bpmn:process></bpmn:definitions>'
    ).encode()


def run_raw(spec: object, count: int) -> float:
    """Run ``count`` instances in raw SpiffWorkflow, in memory; return seconds."""
    began = time.perf_counter()
    for _ in range(count):
        workflow = BpmnWorkflow(spec)
        workflow.do_engine_steps()
        while not workflow.completed:
            task = workflow.get_next_task(state=TaskState.READY, manual=True)
            task.set_data(done=True)
            task.run()
            workflow.do_engine_steps()
    return time.perf_counter() - began


def run_engine(engine: Engine, count: int, latencies: list[float]) -> float:
    """Run ``count`` instances through the facade with durable storage; return seconds."""
    began = time.perf_counter()
    for number in range(count):
        view = engine.start(KEY, {"n": number}, business_key=f"B-{number}")
        while view["tasks"]:
            t0 = time.perf_counter()
            view = engine.complete_task(view["tasks"][0]["id"], {"done": True})
            latencies.append(time.perf_counter() - t0)
        assert view["status"] == "completed", view["status"]
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=200, help="instances per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        db = create_db_engine(url)
        if not url.startswith("sqlite"):
            with db.begin() as conn:  # a clean slate on a shared PostgreSQL
                conn.execute(text("DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench"))
            db.dispose()
            url += ("&" if "?" in url else "?") + "options=-csearch_path%3Dbench"
            db = create_db_engine(url)
        upgrade(db)
        registry = default_registry()
        engine = Engine(Store(db), dispatcher=registry.dispatch, known_operators=list(registry))
        engine.deploy([("ten.bpmn", ten_task_bpmn())])

        raw_parser = SpiffBpmnParser()
        raw_parser.add_bpmn_str(ten_task_bpmn(), "ten.bpmn")
        spec = raw_parser.get_spec(KEY)

        run_raw(spec, 20)  # warm-up both sides
        run_engine(engine, 20, [])
        raw_seconds = engine_seconds = 0.0
        latencies: list[float] = []
        for _ in range(args.rounds):
            raw_seconds += run_raw(spec, args.instances)
            engine_seconds += run_engine(engine, args.instances, latencies)
        total = args.instances * args.rounds
        raw_rate, engine_rate = total / raw_seconds, total / engine_seconds
        latencies.sort()
        print(f"database            {db.url.get_backend_name()}")
        print(f"instances per side  {total} ({args.rounds} alternating rounds of {args.instances})")
        print(f"raw SpiffWorkflow   {raw_rate:8.1f} instances/s (in memory, no persistence)")
        print(
            f"motcua engine       {engine_rate:8.1f} instances/s (durable, {TASKS + 1} commits per instance)"
        )
        print(f"ratio engine/raw    {engine_rate / raw_rate:8.3f}")
        print(
            f"task completion     p50 {statistics.median(latencies) * 1000:.2f} ms  "
            f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.2f} ms"
        )
        db.dispose()


if __name__ == "__main__":
    main()
