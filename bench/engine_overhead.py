"""Engine overhead: the same BPMN through our facade (durable) and through raw SpiffWorkflow (in memory).

Two workloads, each run in alternating rounds (raw, engine on SQLite, engine on PostgreSQL, raw, ...) in one
process, so that the ratios are fair on a noisy machine:

* ``l4``: the level-4 dossier lifecycle of the bundled BPMN (workflows/bpmn/dossier_l4.bpmn with its
  fragments, deployed as ``motcua seed`` deploys them): start, information, submit_online, review (accept),
  the ``payment.confirmed`` message, appraise, approve, the ``result.collected`` message (online delivery).
  Service tasks (``payment.request``, ``delivery.online``) call the real handler registry; the reception's
  ``working_hours(4)`` escalation timer is computed with the real working calendar.
* ``ten``: a straight line of ten user tasks (the engine's bare cost per completion).

The raw side runs the same specs (parsed by ``MotcuaBpmnParser``, SpiffWorkflow's ``SpiffBpmnParser`` with
our service task and timer classes) with OUR sandboxed script engine and the same handlers, completing the
same tasks with the same data and delivering the same messages: the Spiff work is identical, so the ratio is
what durability costs (state serialisation, projections, audit, SQL, commits).  Raw SpiffWorkflow with its
default (unrestricted) script engine cannot run these specs: it has no service dispatch and no
``working_hours()``.

    .venv/bin/python bench/engine_overhead.py                                  # SQLite + PostgreSQL
    .venv/bin/python bench/engine_overhead.py --databases sqlite --instances 50 --rounds 3
    .venv/bin/python bench/engine_overhead.py --workloads l4 --profile postgresql   # cProfile top items
    .venv/bin/python bench/engine_overhead.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

PostgreSQL uses the schema ``bench_engine`` (dropped and re-created); SQLite a file in a temporary folder.
Prints, per workload and database: instances/s of each side, the ratio raw/engine time (target <= 3), the
p50/p95 latency of one step (start, task completion or message) and of task completions alone, commits and
SQL statements per instance, the state size at the end, and where the engine's time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition  # noqa: E402
from SpiffWorkflow.bpmn.util.event import BpmnEvent  # noqa: E402
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.engine import Engine as DbEngine  # noqa: E402

import engine.facade as facade_module  # noqa: E402
import engine.fast_sql as fast_sql_module  # noqa: E402
import engine.hot_sql as hot_sql_module  # noqa: E402
from dossiers.timer_functions import timer_functions  # noqa: E402
from engine import pipeline_writes, sandbox  # noqa: E402
from engine.facade import Engine  # noqa: E402
from engine.runtime import EngineScriptEngine, SystemClock  # noqa: E402
from engine.specs import MotcuaBpmnParser  # noqa: E402
from engine.state import StateCodec  # noqa: E402
from engine.store import Store, create_db_engine  # noqa: E402
from engine.workflow import MotcuaWorkflow  # noqa: E402
from handlers import HandlerRegistry, default_registry  # noqa: E402
from motcua.bundle import bundled_bpmn  # noqa: E402
from motcua.schema import upgrade  # noqa: E402
from tests.engine.test_levels_e2e import FORM, start_data  # noqa: E402

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WORKFLOWS = ROOT / "workflows"
TEN = 10


# -- the workloads: one script of steps, played by both sides ----------------------------------------
@dataclass(frozen=True)
class Step:
    """One unit of work: complete the waiting task ``element``, or deliver ``message``, with ``data``."""

    element: str | None = None
    message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def dossier_data(code: str, delivery_method: str = "online") -> dict[str, Any]:
    """The start data of a level-4 dossier, as ``DossierService.submit`` gives it (the e2e tests' own)."""
    return {**start_data(code, 4), "delivery_method": delivery_method}


def supplement_loop() -> list[Step]:
    """Reception asks for a supplement, the applicant answers (one loop of frag_reception)."""
    return [
        Step("review", data={"decision": "supplement", "supplement_items": ["Bản sao CCCD"]}),
        Step("supplement", data={"supplement_note": "Đã bổ sung", "attachments": ["x.pdf"]}),
    ]


def level4_steps(loops: int = 0) -> list[Step]:
    """The level-4 lifecycle (online delivery), with ``loops`` supplement loops before acceptance."""
    return [
        Step("information"),
        Step("submit_online", data={"form_data": FORM}),
        *itertools.chain.from_iterable(supplement_loop() for _ in range(loops)),
        Step("review", data={"decision": "accept"}),
        Step(message="payment.confirmed", data={"paid_amount": "200000"}),
        Step("appraise", data={"appraisal_opinion": "Đủ điều kiện", "draft_result": "P-2"}),
        Step("approve", data={"approval": "approve", "approval_note": ""}),
        Step(message="result.collected"),
    ]


def ten_task_bpmn() -> bytes:
    """A straight line of ten user tasks."""
    nodes = "".join(f'<bpmn:userTask id="step_{i}" name="Bước {i}"/>' for i in range(1, TEN + 1))
    chain = ["start", *[f"step_{i}" for i in range(1, TEN + 1)], "end"]
    flows = "".join(
        f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
        for i, (a, b) in enumerate(itertools.pairwise(chain))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" '
        'targetNamespace="http://motcua.gov.vn/bench">'
        f'<bpmn:process id="ten_user_tasks" isExecutable="true"><bpmn:startEvent id="start"/>{nodes}'
        f'<bpmn:endEvent id="end"/>{flows}</bpmn:process></bpmn:definitions>'
    ).encode()


@dataclass(frozen=True)
class Workload:
    """A process key, the documents that define it, its start data and the steps to its end."""

    name: str
    key: str
    documents: list[tuple[str, bytes]]
    start_data: Callable[[str], dict[str, Any]]
    steps: list[Step]


def workloads(loops: int = 0) -> dict[str, Workload]:
    """The workloads by name (``l4`` with ``loops`` supplement loops)."""
    return {
        "l4": Workload("l4", "dossier_l4", bundled_bpmn(WORKFLOWS), dossier_data, level4_steps(loops)),
        "ten": Workload(
            "ten",
            "ten_user_tasks",
            [("ten.bpmn", ten_task_bpmn())],
            lambda code: {"n": code},
            [Step(f"step_{i}", data={"done": True}) for i in range(1, TEN + 1)],
        ),
    }


def registry() -> HandlerRegistry:
    """The handlers that ship with motcua (the dossier operations among them)."""
    return default_registry()


# -- raw SpiffWorkflow, in memory ------------------------------------------------------------------
class RawRunner:
    """Plays a workload on raw ``BpmnWorkflow`` objects, in memory, with our script engine and handlers."""

    def __init__(self, workload: Workload, workflow_class: type[BpmnWorkflow] = BpmnWorkflow) -> None:
        self.workflow_class = workflow_class
        parser = MotcuaBpmnParser()
        for name, xml in workload.documents:
            parser.add_bpmn_str(xml, name)
        self.spec = parser.get_spec(workload.key)
        self.subprocess_specs = parser.get_subprocess_specs(workload.key)
        handlers = registry()
        self.script_engine = EngineScriptEngine(
            handlers.dispatch, SystemClock(), environment=sandbox.RestrictedEnvironment(time_limit=2.0)
        )
        self.script_engine.timer_providers.append(timer_functions)
        self.workload = workload

    def run(self, number: int) -> BpmnWorkflow:
        """Run one instance from start to end; return the finished workflow."""
        code = f"RAW-{number}"
        workflow = self.workflow_class(self.spec, self.subprocess_specs, script_engine=self.script_engine)
        workflow.motcua_instance = SimpleNamespace(id=code, business_key=code, conn=None)
        for task in workflow.get_tasks(state=TaskState.READY):
            task.set_data(**self.workload.start_data(code))
        workflow.do_engine_steps()
        for step in self.workload.steps:
            if step.message is None:
                [task] = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True)]
                assert task.task_spec.name == step.element, (task.task_spec.name, step)
                task.set_data(**step.data)
                task.run()
            else:
                self._deliver(workflow, step, code)
            workflow.do_engine_steps()
        assert workflow.completed, "the raw workflow did not finish"
        return workflow

    @staticmethod
    def _deliver(workflow: BpmnWorkflow, step: Step, code: str) -> None:
        waiting = workflow.get_tasks(state=TaskState.WAITING)
        for task in waiting:
            definition = getattr(task.task_spec, "event_definition", None)
            if isinstance(definition, MessageEventDefinition) and definition.name == step.message:
                payload = {"dossier_code": code, **step.data}
                workflow.send_event(
                    BpmnEvent(definition, payload=payload, correlations=dict(workflow.correlations))
                )
                if getattr(definition, "message_var", None) is None:
                    task.data.update(payload)
                return
        raise AssertionError(f"nothing waits for {step.message}")


# -- the engine facade, durable ------------------------------------------------------------------
def prepare_database(kind: str, folder: str, postgres_url: str, schema: str) -> str:
    """Return the URL of an empty migrated database: a new SQLite file, or ``schema`` in PostgreSQL."""
    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(dir=folder)}/{schema}.db"
    else:
        admin = create_db_engine(postgres_url)
        with admin.begin() as conn:  # a clean slate in our own schema of the shared PostgreSQL
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        url = postgres_url + ("&" if "?" in postgres_url else "?") + f"options=-csearch_path%3D{schema}"
    db = create_db_engine(url)
    upgrade(db)
    db.dispose()
    return url


@dataclass
class Counts:
    """Commits and SQL statements sent to one database."""

    commits: int = 0
    statements: int = 0


def _queued(owner: Any, target: Any) -> bool:
    """Whether a ``HotSQL._run_many`` or ``FastStatement.run`` call queues its writes through libpq."""
    if isinstance(owner, hot_sql_module.HotSQL):
        return bool(owner.queued)
    raw = target.connection.driver_connection
    return bool(owner._plan(target).queueable and pipeline_writes.in_pipeline(raw))


def _counted(counts: Counts, kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a function that sends statements so that it counts them in ``counts``: ``one`` per call,
    ``per_row`` (queue_write: one per parameter row), ``unless_queued`` (one per row when not queued)."""

    def counted(*args: Any, **kwargs: Any) -> Any:
        if kind == "one":
            counts.statements += 1
        elif kind == "per_row":
            counts.statements += len(args[2])
        elif not _queued(args[0], args[1]):  # a queued write is counted by queue_write
            rows = args[2]
            counts.statements += 1 if isinstance(rows, dict) else max(len(rows), 1)
        return original(*args, **kwargs)

    return counted


@contextmanager
def counting(db: DbEngine) -> Iterator[Counts]:
    """Count the commits and statements of ``db`` within the block: SQLAlchemy's, and the engine's own on
    the driver (``HotSQL``, ``FastStatement``, the writes queued through libpq by ``pipeline_writes``).

    Used on a separate pass, not on the timed rounds: SQLAlchemy takes a slower path while a
    ``before_cursor_execute`` listener is installed.
    """
    counts = Counts()

    def commit(_conn: Any) -> None:
        counts.commits += 1

    def statement(*_args: Any) -> None:
        counts.statements += 1

    hot, fast = hot_sql_module.HotSQL, fast_sql_module.FastStatement
    wrapped = [
        (hot, "_run", "one"),
        (hot, "_run_many", "unless_queued"),
        (fast, "first_later", "one"),
        (fast, "all", "one"),
        (fast, "run", "unless_queued"),
        (hot_sql_module, "queue_write", "per_row"),
        (fast_sql_module, "queue_write", "per_row"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _kind in wrapped]
    event.listen(db, "commit", commit)
    event.listen(db, "before_cursor_execute", statement)
    for (owner, name, kind), (_owner, _name, original) in zip(wrapped, originals, strict=True):
        setattr(owner, name, _counted(counts, kind, original))
    try:
        yield counts
    finally:
        event.remove(db, "commit", commit)
        event.remove(db, "before_cursor_execute", statement)
        for owner, name, original in originals:
            setattr(owner, name, original)


class Breakdown:
    """Seconds spent in the parts of a unit of work, measured by wrapping the engine's own functions."""

    PARTS = ("spiff steps", "state dumps", "state loads", "projection", "listeners")

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.bytes_written = 0
        self.writes = 0
        self.enabled = True
        self._install()

    @contextmanager
    def timed(self, part: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            if self.enabled:
                self.seconds[part] += time.perf_counter() - began

    def _install(self) -> None:
        breakdown = self
        run_steps, project = Engine.run_steps, facade_module.project
        dumps, loads = StateCodec.dumps, StateCodec.loads

        def timed_run_steps(engine: Engine, *args: Any) -> None:
            with breakdown.timed("spiff steps"):
                run_steps(engine, *args)

        def timed_project(*args: Any) -> Any:
            with breakdown.timed("projection"):
                return project(*args)

        def timed_dumps(codec: StateCodec, *args: Any) -> Any:
            with breakdown.timed("state dumps"):
                result = dumps(codec, *args)
            if breakdown.enabled:
                breakdown.bytes_written += len(result) if result is not None else 0
                breakdown.writes += 1
            return result

        def timed_loads(codec: StateCodec, *args: Any, **kwargs: Any) -> Any:
            with breakdown.timed("state loads"):
                return loads(codec, *args, **kwargs)

        Engine.run_steps = timed_run_steps  # type: ignore[method-assign]
        facade_module.project = timed_project
        StateCodec.dumps = timed_dumps  # type: ignore[method-assign]
        StateCodec.loads = timed_loads  # type: ignore[method-assign]


class EngineRunner:
    """Plays a workload through ``Engine.start`` / ``complete_task`` / ``send_message`` on one database."""

    def __init__(self, workload: Workload, url: str, label: str) -> None:
        self.db = create_db_engine(url)
        self.counts = Counts()
        self.counted = 1
        handlers = registry()
        self.engine = Engine(Store(self.db), dispatcher=handlers.dispatch, known_operators=list(handlers))
        self.engine.add_timer_functions(timer_functions)
        self.engine.deploy(workload.documents, deployed_by="seed")
        self.workload = workload
        self.label = label
        self.steps: list[float] = []
        self.completions: list[float] = []
        self.parts: Counter[str] = Counter()
        self._numbers = itertools.count()

    def run(self, _number: int) -> dict[str, Any]:
        """Run one instance from start to end; return its last view."""
        code = f"{self.label}-{next(self._numbers)}"
        t0 = time.perf_counter()
        view = self.engine.start(self.workload.key, self.workload.start_data(code), business_key=code)
        self.steps.append(time.perf_counter() - t0)
        for step in self.workload.steps:
            t0 = time.perf_counter()
            if step.message is None:
                [task] = view["tasks"]
                assert task["element_id"] == step.element, (task["element_id"], step)
                view = self.engine.complete_task(task["id"], step.data, actor="bench")
                self.completions.append(time.perf_counter() - t0)
            else:
                view = self.engine.send_message(step.message, {"dossier_code": code}, step.data, "bench")
            self.steps.append(time.perf_counter() - t0)
        assert view["status"] == "completed", view["status"]
        return view

    def stored_state_bytes(self) -> int:
        """Return the average size of the stored state column over the finished instances."""
        with self.db.connect() as conn:
            return int(conn.execute(text("SELECT AVG(LENGTH(state)) FROM instances")).scalar() or 0)

    def reset(self) -> None:
        """Forget the figures of the warm-up."""
        self.steps.clear()
        self.completions.clear()
        self.parts.clear()

    def count(self, instances: int) -> None:
        """Run ``instances`` instances counting their commits and statements (untimed)."""
        with counting(self.db) as counts:
            for number in range(instances):
                self.run(number)
        self.counts, self.counted = counts, instances


# -- the run ---------------------------------------------------------------------------------------
def timed(run: Callable[[int], Any], count: int) -> float:
    """Run ``run`` ``count`` times; return seconds."""
    began = time.perf_counter()
    for number in range(count):
        run(number)
    return time.perf_counter() - began


def percentile(values: list[float], share: float) -> float:
    """Return the ``share`` percentile (0..1) of ``values`` in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000


def collector_as_served(thresholds: str | None = None) -> None:
    """Set this process's garbage collector up as ``motcua serve`` and ``motcua worker`` do: what exists so
    far frozen out of its walks (``gc.freeze``), and the shipped thresholds (``tune_collector``), or
    ``thresholds`` (``MOTCUA_GC_THRESHOLDS``'s form, e.g. ``"2000,20,250"``).

    With Python's defaults a full collection comes every ~70,000 net allocations and walks every cached
    instance: a 60-100 ms pause on whichever sample it lands, which a served process does not have.
    """
    import gc

    from motcua.settings import Settings, tune_collector

    gc.collect()
    gc.freeze()
    tune_collector(Settings.from_env({} if thresholds is None else {"MOTCUA_GC_THRESHOLDS": thresholds}))


def machine() -> str:
    """One line describing the machine, Python and PostgreSQL."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def postgres_version(url: str) -> str:
    """Return the PostgreSQL server version at ``url``."""
    db = create_db_engine(url)
    with db.connect() as conn:
        version = str(conn.execute(text("SHOW server_version")).scalar())
    db.dispose()
    return version


def report(workload: Workload, total: int, raw_seconds: float, runner: EngineRunner, seconds: float) -> None:
    """Print one engine-vs-raw block."""
    rate = total / seconds
    counts, counted = runner.counts, runner.counted
    units = total * (len(workload.steps) + 1)
    floor = commit_floor(str(runner.db.url.render_as_string(hide_password=False)))
    beyond = (seconds - units * floor) / raw_seconds
    print(
        f"  {runner.db.url.get_backend_name():<12} engine {rate:8.1f} instances/s   raw/engine time ratio "
        f"{seconds / raw_seconds:6.2f}x   (without the commit floor of {floor * 1000:.2f} ms: {beyond:.2f}x)"
    )
    print(
        f"  {'':<12} step p50 {percentile(runner.steps, 0.5):6.2f} ms  p95 "
        f"{percentile(runner.steps, 0.95):6.2f} ms   completion p50 "
        f"{percentile(runner.completions, 0.5):6.2f} ms  p95 {percentile(runner.completions, 0.95):6.2f} ms"
    )
    print(
        f"  {'':<12} per instance: {counts.commits / counted:5.1f} commits, "
        f"{counts.statements / counted:5.1f} SQL statements, {len(workload.steps) + 1} units of work; "
        f"stored state at the end {runner.stored_state_bytes():,} bytes"
    )
    report_breakdown(runner.parts, seconds, units)


def report_breakdown(parts: Counter[str], seconds: float, units: int) -> None:
    """Print where one engine's time went, per unit of work."""
    accounted = 0.0
    cells = []
    for part in Breakdown.PARTS:
        spent = parts.get(part, 0.0)
        accounted += spent
        if spent:
            cells.append(f"{part} {spent / units * 1000:.3f}")
    rest = seconds - accounted
    cells.append(f"SQL, commits and glue {rest / units * 1000:.3f}")
    print(f"  {'':<12} ms per unit: " + ", ".join(cells))


def commit_floor(url: str, count: int = 100) -> float:
    """Return the median seconds of one committed one-row UPDATE on ``url`` (the durability floor)."""
    db = create_db_engine(url)
    with db.connect() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER PRIMARY KEY, v INTEGER)"))
        conn.execute(text("DELETE FROM bench_floor"))
        conn.execute(text("INSERT INTO bench_floor VALUES (1, 0)"))
        conn.commit()
        spent = []
        for number in range(count):
            began = time.perf_counter()
            conn.execute(text("UPDATE bench_floor SET v = :v WHERE id = 1"), {"v": number})
            conn.commit()
            spent.append(time.perf_counter() - began)
    db.dispose()
    return statistics.median(spent)


def run_workload(
    workload: Workload, urls: dict[str, str], args: argparse.Namespace, breakdown: Breakdown
) -> None:
    """Alternate rounds of raw and engine runs of one workload; print the figures."""
    raw = RawRunner(workload)
    # The engine runs SpiffWorkflow in its own workflow classes (engine/workflow.py: a faster task walk);
    # raw SpiffWorkflow in those classes says what durability alone costs.
    walked = RawRunner(workload, MotcuaWorkflow)
    runners = {kind: EngineRunner(workload, url, f"{workload.name}-{kind}") for kind, url in urls.items()}
    breakdown.enabled = False
    timed(raw.run, args.warmup)
    timed(walked.run, args.warmup)
    for runner in runners.values():
        timed(runner.run, args.warmup)
        runner.count(args.warmup)
        runner.reset()
    breakdown.enabled = True
    breakdown.seconds.clear()
    breakdown.bytes_written = breakdown.writes = 0
    raw_seconds, walked_seconds, seconds = 0.0, 0.0, dict.fromkeys(runners, 0.0)
    round_ratios: dict[str, list[float]] = {kind: [] for kind in runners}
    for _ in range(args.rounds):
        raw_round = timed(raw.run, args.instances)
        raw_seconds += raw_round
        walked_seconds += timed(walked.run, args.instances)
        for kind, runner in runners.items():
            before = Counter(breakdown.seconds)
            spent = timed(runner.run, args.instances)
            seconds[kind] += spent
            round_ratios[kind].append(spent / raw_round)
            runner.parts.update(Counter(breakdown.seconds) - before)
    total = args.instances * args.rounds
    print(
        f"\n{workload.name}: {workload.key}, {len(workload.steps)} steps after the start "
        f"({total} instances per side, {args.rounds} alternating rounds of {args.instances})"
    )
    print(
        f"  {'raw Spiff':<12} {'':6} {total / raw_seconds:8.1f} instances/s   "
        f"({raw_seconds / total / (len(workload.steps) + 1) * 1000:.3f} ms per unit, in memory)"
    )
    print(
        "  raw Spiff in the engine's workflow classes "
        f"({walked_seconds / total / (len(workload.steps) + 1) * 1000:.3f} ms per unit, in memory; "
        f"{raw_seconds / walked_seconds:.2f}x faster than raw)"
    )
    for kind, runner in runners.items():
        report(workload, total, raw_seconds, runner, seconds[kind])
        ratios = sorted(round_ratios[kind])
        print(
            f"  {'':<12} ratio of each round (raw and engine a few seconds apart): median "
            f"{statistics.median(ratios):.2f}x, {ratios[0]:.2f}-{ratios[-1]:.2f}x over {len(ratios)} rounds"
        )
        print(
            f"  {'':<12} durability alone (against raw Spiff in the engine's workflow classes): "
            f"{seconds[kind] / walked_seconds:.2f}x"
        )
    if breakdown.writes:
        print(f"  state written per unit of work: {breakdown.bytes_written / breakdown.writes:,.0f} bytes")
    for runner in runners.values():
        runner.db.dispose()


def profile(workload: Workload, url: str, count: int, top: int) -> None:
    """Profile ``count`` engine instances of a workload; print the top items by cumulative and own time."""
    runner = EngineRunner(workload, url, f"{workload.name}-profile")
    timed(runner.run, 5)
    profiler = cProfile.Profile()
    profiler.enable()
    timed(runner.run, count)
    profiler.disable()
    stats = pstats.Stats(profiler)
    print(f"\nprofile of {count} '{workload.name}' instances on {runner.db.url.get_backend_name()}")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    runner.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # Short rounds, many of them: both sides see the same minutes of this noisy machine.
    parser.add_argument("--instances", type=int, default=10, help="instances per side per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workloads", default="l4,ten", help="comma-separated: l4, ten")
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument("--postgres-url", default=os.environ.get("MOTCUA_BENCH_POSTGRES_URL", POSTGRES_URL))
    parser.add_argument("--profile", choices=["sqlite", "postgresql"], help="profile the engine instead")
    args = parser.parse_args()

    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    chosen = workloads()
    with tempfile.TemporaryDirectory() as folder:
        print(f"machine     {machine()}")
        if "postgresql" in kinds or args.profile == "postgresql":
            print(f"postgresql  {postgres_version(args.postgres_url)} (shared; schema bench_engine)")
        print("note        absolute figures move with the load of the machine; the ratios are same-run")
        if args.profile:
            url = prepare_database(args.profile, folder, args.postgres_url, "bench_engine")
            for name in args.workloads.split(","):
                profile(chosen[name.strip()], url, args.instances, 30)
            return
        breakdown = Breakdown()
        collector_as_served()
        for name in args.workloads.split(","):
            urls = {kind: prepare_database(kind, folder, args.postgres_url, "bench_engine") for kind in kinds}
            run_workload(chosen[name.strip()], urls, args, breakdown)
    print("\ntarget: engine within 3x of raw SpiffWorkflow in memory (raw/engine time ratio <= 3)")


if __name__ == "__main__":
    main()
