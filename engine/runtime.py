"""What the engine is given and what it works on: clock, service dispatch, live instances, step running.

``advance`` runs the engine steps of one workflow and turns a failing task into either a scheduled retry
(a retryable handler error with attempts left) or an incident; the rest of the workflow carries on.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
)
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError

from .errors import HandlerError, MotcuaError, ScriptError
from .projection import DUE_AT, RETRY_AT, timer_due_at
from .sandbox import SandboxedScriptEngine
from .store import Projection
from .timer_specs import default_functions, evaluate_due
from .workflow import INDEX

ATTEMPTS = "motcua_attempts"
MAX_FAILURE_ROUNDS = 1000


class Clock(Protocol):
    """Source of the current time (timezone-aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


@dataclass(frozen=True)
class ServiceContext:
    """What a service-task handler knows about the call besides its parameters.

    ``idempotency_key`` is the same for every attempt of one task, so handlers can de-duplicate.
    """

    instance_id: str
    business_key: str | None
    element_id: str
    task_id: str
    attempt: int
    now: datetime

    @property
    def idempotency_key(self) -> str:
        """Return a key that is stable across retries of the same task."""
        return f"{self.instance_id}:{self.task_id}"


Dispatcher = Callable[[str, dict[str, Any], ServiceContext], dict[str, Any]]


@dataclass(frozen=True)
class InstanceChange:
    """What a unit of work did to one instance, told to instance listeners before it commits.

    Listeners run in the unit's transaction (they get its connection), so what they write commits or rolls
    back with the instance; a listener that raises a domain error aborts the whole unit.
    """

    instance_id: str
    process_key: str
    business_key: str | None
    created: bool
    projection: Projection
    audit: tuple[dict[str, Any], ...]
    data: dict[str, Any]
    actor: str
    now: datetime
    # The data given to each user task completed in the unit, by task id: what that person decided, even
    # when ``data`` (the latest task's) comes from another branch.
    submitted: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The ids of the instance's ready tasks before this unit of work (empty for a new instance), or None when
    # the engine does not know them (the instance was loaded from the database in this unit).
    previous_ready: frozenset[str] | None = None
    # What the listeners' ``prefetch`` queued at the start of the unit, by name: call to get the result.
    prefetched: Mapping[str, Callable[[], Any]] = field(default_factory=dict)


Listener = Callable[[Connection, InstanceChange], None]
# A listener's optional ``prefetch(conn, business_key)``, run when a unit of work has taken its instance and
# before it acts: it queues the reads the listener will need (in PostgreSQL's pipeline they then travel
# while the engine runs the steps) and returns, by name, functions that give their results.
Prefetcher = Callable[[Connection, str], Mapping[str, Callable[[], Any]]]


class Prefetched:
    """One prefetched result (``Prefetcher``): asked for once, then remembered.

    ``Engine.save`` takes every prefetched result before it queues the unit's writes: in PostgreSQL's
    pipeline a result is read only after every statement sent before it has been executed, so a read
    taken after the writes would wait for the server to write the state, while taken before them it is
    already there (it travelled while the steps ran) and the writes are executed while the listeners work.
    """

    __slots__ = ("_get", "_taken", "_value")

    def __init__(self, get: Callable[[], Any]) -> None:
        self._get = get
        self._taken = False
        self._value: Any = None

    def __call__(self) -> Any:
        if not self._taken:
            self._value = self._get()
            self._taken = True
        return self._value


# Runs at the start of ``Engine.start``'s transaction; returns the business key and extra start data
# (e.g. a dossier code allocated in the same transaction, so that a failed start leaves no gap).
Preparer = Callable[[Connection], tuple[str | None, dict[str, Any]]]


@dataclass
class RetryPolicy:
    """Default retry settings for service tasks that do not state their own in the BPMN."""

    retries: int = 3
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0

    def delay(self, attempt: int, base: float | None = None) -> timedelta:
        """Return how long to wait before retry number ``attempt`` (1-based), exponential and capped."""
        seconds = (base if base is not None else self.backoff_base_seconds) * 2 ** (attempt - 1)
        return timedelta(seconds=min(seconds, self.backoff_max_seconds))


@dataclass
class Instance:
    """A live instance: its stored identity and its workflow, checked out for one unit of work."""

    id: str
    definition_id: int
    process_key: str
    business_key: str | None
    row_version: int
    workflow: BpmnWorkflow
    created_at: datetime
    projection: Projection | None = None
    # The connection of the unit of work that has the instance checked out (None between units), for
    # what runs inside it and needs the database (timer functions such as ``due_date()``).
    conn: Connection | None = field(default=None, repr=False, compare=False)


# ``provider(conn, instance, now)`` returns functions by name for timer expressions to call (e.g.
# ``working_days``); ``conn`` is the connection of the unit of work the timer starts waiting in.
TimerFunctions = Callable[[Connection | None, Instance | None, datetime], Mapping[str, Callable[..., Any]]]


@dataclass
class UnitLog:
    """Audit entries and incidents produced while working one instance."""

    instance_id: str
    actor: str
    now: datetime
    audit: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    # What each user task completed in this unit was given, by task id (told to listeners, not stored).
    submitted: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What listeners asked for at the start of the unit (``Prefetcher``), by name: read when they run.
    prefetched: dict[str, Callable[[], Any]] = field(default_factory=dict)

    def record(self, action: str, task: Task | None = None, **details: Any) -> None:
        """Append an audit entry for ``action`` on ``task`` (or the instance)."""
        self.audit.append(
            {
                "instance_id": self.instance_id,
                "task_id": str(task.id) if task is not None else None,
                "element_id": task.task_spec.name if task is not None else None,
                "action": action,
                "actor": self.actor,
                "at": self.now,
                "details": json.dumps(details, ensure_ascii=False, default=str) if details else None,
            }
        )


class EngineScriptEngine(SandboxedScriptEngine):
    """The sandboxed script engine, plus service calls routed to the handler registry and timer due times
    computed by the engine's clock."""

    def __init__(self, dispatcher: Dispatcher, clock: Clock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dispatcher = dispatcher
        self.clock = clock
        self.instance: Instance | None = None
        self.timer_providers: list[TimerFunctions] = []

    def timer_due_at(self, task: Task, kind: str, expression: str) -> datetime:
        """Return when a timer that starts waiting now is due (see ``engine.timer_specs``).

        The expression sees the task data, ``now()`` and what the timer providers give, evaluated at
        the engine clock's current time.

        Raises:
            ScriptError: the expression fails or gives no valid due time (naming element and expression).
            SandboxViolation: it breaks a sandbox rule.
        """
        now = self.clock.now()
        instance = getattr(task.workflow.top_workflow, "motcua_instance", None)
        functions = default_functions(now)
        for provider in self.timer_providers:
            functions.update(provider(getattr(instance, "conn", None), instance, now))

        def evaluate(source: str) -> Any:
            return self.evaluate(task, source, external_context=functions)

        return evaluate_due(task, kind, expression, now, evaluate)

    def call_service_values(self, task: Task, operator: str, params: dict[str, Any]) -> Any:
        """Call the handler of ``operator``; return its result as Python values.

        Raises:
            HandlerError: the handler failed (``retryable`` says whether to try again).
        """
        instance = task.workflow.top_workflow.motcua_instance
        context = ServiceContext(
            instance_id=instance.id,
            business_key=instance.business_key,
            element_id=task.task_spec.name,
            task_id=str(task.id),
            attempt=int(task.internal_data.get(ATTEMPTS, 0)) + 1,
            now=self.clock.now(),
        )
        return self.dispatcher(operator, params, context)


def advance(workflow: BpmnWorkflow, log: UnitLog, policy: RetryPolicy) -> None:
    """Run engine steps until only human tasks, waits or failed tasks remain.

    A task that raises is left in ERROR and handed to ``handle_failure``; other branches go on.

    Raises:
        MotcuaError: a failure outside any task (e.g. a timer expression refreshed between steps).
    """
    current: list[Task] = []

    def will_run(task: Task) -> None:
        current[:] = [task]

    for _ in range(MAX_FAILURE_ROUNDS):
        current.clear()
        try:
            workflow.do_engine_steps(will_complete_task=will_run)
            align_timers(workflow, log.now)
            return
        except Exception as exc:
            outage = database_outage(exc)
            if outage is not None:
                raise outage from exc  # nothing of this unit is kept; the caller (or its client) tries again
            error = domain_error(exc)
            task = current[0] if current else None
            if task is None or not task.has_state(TaskState.ERROR):
                raise error from exc
            handle_failure(task, error, log, policy)
    raise ScriptError("The process did not settle: too many failing tasks in one step")


def align_timers(workflow: BpmnWorkflow, now: datetime) -> None:
    """Pin each newly waiting timer's due time to the engine's clock.

    Date and duration timers compute their due time by the engine's clock themselves
    (``engine.timer_specs``); SpiffWorkflow computes cycle rounds (and computed durations of instances
    stored before) from the system clock, so the engine's clock (a test's, or a corrected one) shifts
    them.  The due time is fixed once, when the timer starts waiting, and kept in the task's internal data.
    """
    offset = now - datetime.now(UTC)
    for task in workflow.event_manager.tasks.values():
        definition = getattr(task.task_spec, "event_definition", None)
        if task.state != TaskState.WAITING or DUE_AT in task.internal_data:
            continue
        if not isinstance(definition, DurationTimerEventDefinition | CycleTimerEventDefinition):
            continue
        due = timer_due_at(task)
        if due is not None:
            task.internal_data[DUE_AT] = (due + offset).isoformat()


def handle_failure(task: Task, error: MotcuaError, log: UnitLog, policy: RetryPolicy) -> None:
    """Schedule a retry of a failed task, or record an incident when no retry is left."""
    attempts = int(task.internal_data.get(ATTEMPTS, 0)) + 1
    task.internal_data[ATTEMPTS] = attempts
    spec = task.task_spec
    allowed = getattr(spec, "retries", None)
    allowed = policy.retries if allowed is None else int(allowed)
    if isinstance(error, HandlerError) and error.retryable and attempts <= allowed:
        delay = policy.delay(attempts, getattr(spec, "retry_backoff_base", None))
        task.internal_data[RETRY_AT] = (log.now + delay).isoformat()
        log.record(
            "retry_scheduled",
            task,
            attempt=attempts,
            error=error.message,
            retry_at=task.internal_data[RETRY_AT],
        )
        return
    task.internal_data.pop(RETRY_AT, None)
    log.record("incident", task, attempt=attempts, error=error.message, kind=error.code)
    log.incidents.append(
        {
            "instance_id": log.instance_id,
            "task_id": str(task.id),
            "element_id": spec.name,
            "kind": error.code,
            "message": error.message,
            "attempts": attempts,
            "created_at": log.now,
        }
    )


def database_outage(exc: BaseException) -> BaseException | None:
    """The lost or refused database connection behind an exception raised through SpiffWorkflow, if any.

    A timer function or a handler that reads the database while PostgreSQL restarts is no failure of the
    process: it must neither become an incident or a retry of the task, nor a ``ScriptError`` (an HTTP 422
    that a client does not retry, with the driver's message in it), but the error itself, so that the unit
    of work rolls back and the request or the job is tried again.
    """
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        if isinstance(node, OperationalError | InterfaceError):
            return node
        seen.add(id(node))
        inner = getattr(node, "exception", None)
        node = inner if isinstance(inner, BaseException) else (node.__cause__ or node.__context__)
    return None


def domain_error(exc: BaseException) -> MotcuaError:
    """Find the domain error behind an exception raised through SpiffWorkflow, or wrap it."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        if isinstance(node, MotcuaError):
            return node
        seen.add(id(node))
        inner = getattr(node, "exception", None)
        node = inner if isinstance(inner, BaseException) else (node.__cause__ or node.__context__)
    return ScriptError(f"{type(exc).__name__}: {exc}")


def wake_task(task: Task) -> None:
    """Make a failed task runnable again (for a due retry or an admin's retry)."""
    task.internal_data.pop(RETRY_AT, None)
    task._set_state(TaskState.READY)


def dispose(instance: Instance) -> None:
    """Break the reference cycles of an instance that nothing will use again, so that reference counting
    frees it at once.

    A workflow is a web of cycles (each task points back to its workflow, a call activity's workflow to
    the top one, the event manager to its workflow, the workflow to its instance), so a dropped instance
    would otherwise wait for the garbage collector's oldest generation: a full pass that walks every object
    of the process and, in a server holding thousands of instances, pauses the requests it lands on for
    100-200 ms (``bench/gc_pauses.py``).  Only the links are cut; task data and specs are left as they are.
    """
    workflow = instance.workflow
    for wf in (*workflow.subprocesses.values(), workflow):
        for task in wf.tasks.values():
            task.__dict__.pop("workflow", None)
        wf.tasks = {}
        wf.__dict__.pop(INDEX, None)  # engine/workflow.py's index of tasks by state
        wf.task_tree = None
        wf.last_task = None
    workflow.subprocesses = {}
    workflow.__dict__.pop("event_manager", None)
    workflow.__dict__.pop("motcua_instance", None)


class InstanceCache:
    """A small thread-safe LRU of live (unfinished) instances, each held by at most one unit of work at a
    time, with an index of the ready tasks of the cached instances (by their last projection).

    An instance the cache lets go (evicted, replaced by a newer copy, finished) is ``dispose``d: nobody else
    holds it, since a unit of work ``take``s the instance it works on out of the cache first.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Instance] = OrderedDict()
        self._tasks: dict[str, str] = {}  # ready task id -> id of the cached instance it is ready in
        self._lock = threading.Lock()

    def take(self, instance_id: str, row_version: int | None = None) -> Instance | None:
        """Remove and return the cached instance, if any; with ``row_version``, only that version (another
        one is stale: it is dropped)."""
        with self._lock:
            instance = self._items.pop(instance_id, None)
            if instance is None:
                return None
            self._unindex(instance)
        if row_version is not None and instance.row_version != row_version:
            dispose(instance)
            return None
        return instance

    def put(self, instance: Instance) -> None:
        """Return an instance after a successful commit.  A finished one is let go (nothing more happens to
        it, and every object the cache holds makes the garbage collector's full passes longer): the caller
        must be done with it."""
        if instance.workflow.completed:
            dispose(instance)
            return
        with self._lock:
            dropped = self._keep(instance)
        for old in dropped:
            dispose(old)

    def offer(self, instance: Instance) -> None:
        """Cache an instance that a read-only unit of work loaded, unless a version as new is cached.

        An older version may still win a race with a writer of this process that commits meanwhile (the
        writer's ``put`` then replaces it); every checkout compares row versions, so it is never used stale.
        """
        if instance.workflow.completed:
            return
        with self._lock:
            cached = self._items.get(instance.id)
            if cached is not None and cached.row_version >= instance.row_version:
                return
            dropped = self._keep(instance)
        for old in dropped:
            dispose(old)

    def holding_task(self, task_id: str) -> tuple[str, int] | None:
        """Return (instance id, row version) of the cached instance in which ``task_id`` was last seen
        ready, or None."""
        with self._lock:
            instance_id = self._tasks.get(task_id)
            cached = self._items.get(instance_id) if instance_id is not None else None
            return (cached.id, cached.row_version) if cached is not None else None

    def _keep(self, instance: Instance) -> list[Instance]:
        """Cache ``instance``; return the instances it replaced or pushed out, for the caller to dispose of
        outside the lock."""
        dropped = []
        replaced = self._items.get(instance.id)
        if replaced is not None:
            self._unindex(replaced)
            if replaced is not instance:
                dropped.append(replaced)
        self._items[instance.id] = instance
        self._items.move_to_end(instance.id)
        if instance.projection is not None:
            for task_id in instance.projection.ready_tasks:
                self._tasks[task_id] = instance.id
        while len(self._items) > self.size:
            _, evicted = self._items.popitem(last=False)
            self._unindex(evicted)
            dropped.append(evicted)
        return dropped

    def _unindex(self, instance: Instance) -> None:
        if instance.projection is not None:
            for task_id in instance.projection.ready_tasks:
                if self._tasks.get(task_id) == instance.id:
                    del self._tasks[task_id]

    def contains(self, instance_id: str) -> bool:
        """Whether some version of the instance is cached (and not being worked on)."""
        with self._lock:
            return instance_id in self._items

    def holds(self, instance_id: str, row_version: int) -> bool:
        """Whether this version of the instance is cached (and not being worked on)."""
        with self._lock:
            cached = self._items.get(instance_id)
            return cached is not None and cached.row_version == row_version

    def peek(self, instance_id: str, row_version: int, use: Callable[[Instance], Any]) -> Any:
        """Call ``use`` on the cached instance while holding the lock, if it is current; else None."""
        with self._lock:
            cached = self._items.get(instance_id)
            if cached is None or cached.row_version != row_version:
                return None
            return use(cached)

    def clear(self) -> None:
        """Forget every cached instance."""
        with self._lock:
            dropped = list(self._items.values())
            self._items.clear()
            self._tasks.clear()
        for old in dropped:
            dispose(old)
