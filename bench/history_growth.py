"""The cost of one task completion as a dossier's history grows: 0, 5 and 20 supplement loops.

A level-4 dossier (workflows/bpmn/dossier_l4.bpmn with its fragments, the real handlers and working calendar)
is brought through ``loops`` supplement loops (reception asks for a supplement, the applicant answers), then
ONE completion is measured: the reception's ``review`` with ``accept`` (the payment request runs and the
dossier waits for payment).  SpiffWorkflow keeps every finished task in the workflow tree, so the state grows
with the loops; this shows how much, and what a completion costs at each size:

* warm: the live workflow is in the engine's memory cache (the same process served the previous step);
* cold: it is not (another API worker served the previous step: each of several server workers has its own
  cache), so the unit of work also reads and restores the whole state.

Alternates sizes and databases in rounds, in one run; prints per size and database the completion p50/p95,
the stored state size, the bytes written by the measured unit, where the time went, and the ratio of the
20-loop cost to the 0-loop cost.

    .venv/bin/python bench/history_growth.py                                   # SQLite + PostgreSQL
    .venv/bin/python bench/history_growth.py --databases sqlite --samples 10
    .venv/bin/python bench/history_growth.py --loops 0,5,20,50 --postgres-url postgresql+psycopg://...

PostgreSQL uses the schema ``bench_history`` (dropped and re-created); SQLite a file in a temporary folder.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_overhead import (
    POSTGRES_URL,
    Breakdown,
    EngineRunner,
    Step,
    Workload,
    collector_as_served,
    machine,
    percentile,
    postgres_version,
    prepare_database,
    workloads,
)
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import text

from engine.specs import serializer_config
from engine.state import (
    BpmnWorkflowConverter,
    SpeclessWorkflowConverter,
    StateCodec,
)
from engine.state import _register_value_types as register_value_types

MEASURED = Step("review", data={"decision": "accept"})
Result = tuple[float, int, int, Counter[str]]


class Sampler:
    """Brings dossiers to ``loops`` supplement loops on one database and times the next completion."""

    def __init__(self, workload: Workload, url: str, label: str, breakdown: Breakdown) -> None:
        self.runner = EngineRunner(workload, url, label)
        self.engine = self.runner.engine
        self.workload = workload
        self.breakdown = breakdown
        self.serial = 0

    def prepare(self, loops: int) -> dict[str, Any]:
        """Start a dossier and play its steps up to the review after ``loops`` loops; return the view."""
        self.serial += 1
        code = f"{self.runner.label}-{loops}-{self.serial}"
        view = self.engine.start(self.workload.key, self.workload.start_data(code), business_key=code)
        for step in self.workload.steps[: 2 + 2 * loops]:  # information, submit_online, the loops
            [task] = view["tasks"]
            assert task["element_id"] == step.element, (task["element_id"], step)
            view = self.engine.complete_task(task["id"], step.data, actor="bench")
        return view

    def measure(self, loops: int, cold: bool) -> Result:
        """Time one ``review`` completion after ``loops`` loops.

        Returns:
            (seconds, state bytes stored after it, bytes the unit wrote, seconds per part).
        """
        view = self.prepare(loops)
        [task] = view["tasks"]
        assert task["element_id"] == "review"
        if cold:
            self.engine.instances.clear()
        before, written = Counter(self.breakdown.seconds), self.breakdown.bytes_written
        began = time.perf_counter()
        view = self.engine.complete_task(task["id"], MEASURED.data, actor="bench")
        spent = time.perf_counter() - began
        parts = Counter(self.breakdown.seconds) - before
        with self.runner.db.connect() as conn:
            query = text("SELECT LENGTH(state) FROM instances WHERE id = :id")
            stored = int(conn.execute(query, {"id": view["id"]}).scalar_one())
        return spent, stored, self.breakdown.bytes_written - written, parts


def compression_report(sampler: Sampler, kind: str, rounds: int = 40) -> None:
    """Compare the stored state as written today with zlib-compressed state: bytes, and the time to write
    (encode, UPDATE, COMMIT) and read (SELECT, decode) it, on this database, in a scratch table."""
    db = sampler.runner.db
    with db.connect() as conn:
        query = "SELECT state FROM instances ORDER BY LENGTH(state) DESC LIMIT 1"
        state = str(conn.execute(text(query)).scalar_one())
        toast = ""
        if kind == "postgresql":
            query = "SELECT pg_column_size(state) FROM instances ORDER BY LENGTH(state) DESC LIMIT 1"
            toast = f", {conn.execute(text(query)).scalar_one():,} bytes as stored by TOAST (pglz)"
    raw = state.encode()
    print(f"\n{kind}: the largest state, {len(raw):,} bytes of JSON{toast}")
    binary = "BYTEA" if kind == "postgresql" else "BLOB"
    variants: dict[str, tuple[str, Callable[[str], Any], Callable[[Any], str]]] = {
        "JSON text (today)": ("t", lambda s: s, lambda v: str(v)),
        f"zlib-1 {binary}": (
            "b",
            lambda s: zlib.compress(s.encode(), 1),
            lambda v: zlib.decompress(v).decode(),
        ),
        "zlib-1 base64 text": (
            "t",
            lambda s: base64.b64encode(zlib.compress(s.encode(), 1)).decode(),
            lambda v: zlib.decompress(base64.b64decode(v)).decode(),
        ),
    }
    raw_db = db.raw_connection()
    try:
        cursor = raw_db.cursor()
        mark = "?" if kind == "sqlite" else "%s"
        cursor.execute("DROP TABLE IF EXISTS bench_state_codec")
        cursor.execute(f"CREATE TABLE bench_state_codec (id INTEGER PRIMARY KEY, t TEXT, b {binary})")
        cursor.execute("INSERT INTO bench_state_codec VALUES (1, '', NULL)")
        raw_db.commit()
        for name, (column, encode, decode) in variants.items():
            writes, reads, size = [], [], 0
            for number in range(rounds):
                began = time.perf_counter()
                value = encode(state + " " * (number % 2))
                cursor.execute(f"UPDATE bench_state_codec SET {column} = {mark} WHERE id = 1", (value,))
                raw_db.commit()
                writes.append(time.perf_counter() - began)
                size = len(value)
                began = time.perf_counter()
                cursor.execute(f"SELECT {column} FROM bench_state_codec WHERE id = 1")
                decode(cursor.fetchone()[0])
                raw_db.commit()
                reads.append(time.perf_counter() - began)
            print(
                f"  {name:<20} {size:>8,} bytes sent   "
                f"write+commit p50 {statistics.median(writes) * 1000:6.2f} ms"
                f"   read+decode p50 {statistics.median(reads) * 1000:6.2f} ms"
            )
        cursor.execute("DROP TABLE bench_state_codec")
        raw_db.commit()
    finally:
        raw_db.close()


def stock_codec() -> StateCodec:
    """A codec with SpiffWorkflow's own task converters and no fragment seeding: the engine before 14:00
    on 2026-11-28, kept here as the same-run reference for the cold path."""
    config = serializer_config()
    config[BpmnWorkflow] = type(
        "StockSpecless",
        (BpmnWorkflowConverter,),
        {"to_dict": SpeclessWorkflowConverter.to_dict, "from_dict": SpeclessWorkflowConverter.from_dict},
    )
    registry = BpmnWorkflowSerializer.configure(config)
    register_value_types(registry)
    codec = StateCodec(BpmnWorkflowSerializer(registry))
    codec._seed_fragments = lambda workflow, stored: None  # type: ignore[method-assign]
    return codec


def cold_path_report(sampler: Sampler, sizes: list[int], rounds: int = 30) -> None:
    """Load a stored state and save it again (what a cold unit of work adds), with SpiffWorkflow's stock task
    converters and with the engine's, alternating in this run; both must write back exactly what was read."""
    engine = sampler.engine
    codecs = {"stock": stock_codec(), "engine": engine.codec}
    print(
        "\ncold path: load a stored state + its first save, SpiffWorkflow's task converters vs the engine's"
    )
    for loops in sizes:
        view = sampler.prepare(loops)
        with engine.store.unit_of_work(write=False) as uow:
            row = uow.instance_state(view["id"])
            spec, subprocess_specs = engine.library.specs(uow, view["definition_id"])
        spent: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in codecs}
        for _ in range(rounds):
            for name, codec in codecs.items():
                began = time.perf_counter()
                workflow = codec.loads(row.state, row.state_format, spec, subprocess_specs)
                loaded = time.perf_counter()
                assert codec.dumps(workflow) == row.state, "a save after a load changed the state"
                spent[name][0].append(loaded - began)
                spent[name][1].append(time.perf_counter() - loaded)
        # The fastest of the alternating rounds: the CPU cost with the least interference from other load.
        cells = [
            f"{name} {min(load) * 1000:6.2f} + {min(save) * 1000:5.2f} ms"
            for name, (load, save) in spent.items()
        ]
        stock, ours = (sum(min(part) for part in spent[name]) for name in codecs)
        print(
            f"  {loops:>3} loops ({len(row.state):>7,} chars): "
            + ",  ".join(cells)
            + f"   ratio {stock / ours:.2f}x"
        )


def print_cells(
    kind: str, mode: str, sizes: list[int], results: dict[tuple[str, str, int], list[Result]]
) -> None:
    """Print the completion cost per history size for one database and cache mode."""
    print(f"\n{kind}, {mode} cache")
    print(
        f"  {'loops':>5} {'p50 ms':>8} {'p95 ms':>8} {'state bytes':>12} {'written/unit':>13}   "
        "ms per part (mean)"
    )
    base = None
    for loops in sizes:
        cell = results[(kind, mode, loops)]
        times = [sample[0] for sample in cell]
        p50 = percentile(times, 0.5)
        base = p50 if base is None else base
        parts: Counter[str] = Counter()
        for sample in cell:
            parts.update(sample[3])
        shares = ", ".join(f"{part} {spent / len(cell) * 1000:.2f}" for part, spent in sorted(parts.items()))
        rest = statistics.mean(times) * 1000 - sum(parts.values()) / len(cell) * 1000
        print(
            f"  {loops:>5} {p50:8.2f} {percentile(times, 0.95):8.2f} "
            f"{statistics.median(s[1] for s in cell):12,.0f} "
            f"{statistics.median(s[2] for s in cell):13,.0f}   {shares}, SQL and glue {rest:.2f}"
        )
    last = percentile([sample[0] for sample in results[(kind, mode, sizes[-1])]], 0.5)
    print(f"  ratio {sizes[-1]} loops / {sizes[0]} loops (p50): {last / (base or last):.2f}x")


def collect(
    samplers: dict[str, Sampler], sizes: list[int], samples: int
) -> dict[tuple[str, str, int], list[Result]]:
    """Measure every (database, cache mode, size) cell ``samples`` times, alternating between cells."""
    results: dict[tuple[str, str, int], list[Result]] = {}
    for _ in range(samples):
        for loops in sizes:
            for kind, sampler in samplers.items():
                for mode in ("warm", "cold"):
                    cell = results.setdefault((kind, mode, loops), [])
                    cell.append(sampler.measure(loops, cold=mode == "cold"))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loops", default="0,5,20", help="comma-separated supplement loop counts")
    parser.add_argument("--samples", type=int, default=12, help="measured completions per size, per mode")
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument("--postgres-url", default=os.environ.get("MOTCUA_BENCH_POSTGRES_URL", POSTGRES_URL))
    parser.add_argument("--no-compression", action="store_true", help="skip the compression comparison")
    args = parser.parse_args()
    sizes = [int(n) for n in args.loops.split(",")]
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    workload = workloads(max(sizes))["l4"]
    print(f"machine     {machine()}")
    if "postgresql" in kinds:
        print(f"postgresql  {postgres_version(args.postgres_url)} (shared; schema bench_history)")
    print("note        absolute figures move with the load of the machine; the ratios are same-run")
    print(
        f"measured    one 'review' completion (accept) of a level-4 dossier; {args.samples} samples per cell"
    )

    breakdown = Breakdown()
    with tempfile.TemporaryDirectory() as folder:
        samplers = {
            kind: Sampler(
                workload, prepare_database(kind, folder, args.postgres_url, "bench_history"), kind, breakdown
            )
            for kind in kinds
        }
        for sampler in samplers.values():  # warm-up: parse caches, connections
            sampler.measure(0, cold=False)
            sampler.measure(0, cold=True)
        collector_as_served()
        results = collect(samplers, sizes, args.samples)
        for kind in kinds:
            for mode in ("warm", "cold"):
                print_cells(kind, mode, sizes, results)
        cold_path_report(next(iter(samplers.values())), sizes)
        if not args.no_compression:
            for kind, sampler in samplers.items():
                compression_report(sampler, kind)
        for sampler in samplers.values():
            sampler.runner.db.dispose()


if __name__ == "__main__":
    main()
