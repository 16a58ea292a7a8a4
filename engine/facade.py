"""The engine's one public face: deploy, start, complete, message, fire timers, retry, show.

Every public method is one unit of work: it opens one transaction, changes at most one instance, writes the
instance state, its projections and its audit entries together, and commits once.  Live workflows are
kept in an in-memory cache between units of work, checked out (removed) while in use and put back only
after a successful commit, so a failed unit never leaves a half-changed workflow behind.  The row version
of the instance decides whether the cached workflow is still current.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.exc import IntegrityError

from . import sandbox
from .definitions import Definitions
from .errors import ConflictError, NotFoundError
from .instance_ops import InstanceOps
from .projection import project
from .runtime import (
    Clock,
    Dispatcher,
    EngineScriptEngine,
    Instance,
    InstanceCache,
    InstanceChange,
    Listener,
    Preparer,
    RetryPolicy,
    SystemClock,
    TimerFunctions,
    UnitLog,
)
from .state import STATE_FORMAT, StateCodec
from .store import Projection, Store, UnitOfWork
from .views import current_data, instance_view, summary, workflow_view
from .wakeups import WakeUps
from .workflow import MotcuaWorkflow


class Engine(InstanceOps, WakeUps):
    """Deploys and runs BPMN processes with durable state.

    Args:
        store: the database.
        dispatcher: calls service-task handlers by operator name.
        known_operators: operator names the dispatcher serves, for linting.
        clock: time source (tests pass a fake one).
        retry_policy: default retries and back-off of service tasks.
        script_time_limit: seconds a script or expression may run.
        cache_size: how many live instances to keep in memory.
    """

    def __init__(
        self,
        store: Store,
        *,
        dispatcher: Dispatcher,
        known_operators: Collection[str] | None = None,
        clock: Clock | None = None,
        retry_policy: RetryPolicy | None = None,
        script_time_limit: float = 2.0,
        cache_size: int = 2000,
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.codec = StateCodec()
        self.retry_policy = retry_policy or RetryPolicy()
        self.script_engine = EngineScriptEngine(
            dispatcher, self.clock, environment=sandbox.RestrictedEnvironment(time_limit=script_time_limit)
        )
        self.library = Definitions(store, self.codec, self.clock, known_operators)
        self.instances = InstanceCache(cache_size)
        self.listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every instance change, inside its transaction (see ``InstanceChange``)."""
        self.listeners.append(listener)

    def add_timer_functions(self, provider: TimerFunctions) -> None:
        """Offer timer expressions the functions ``provider(conn, instance, now)`` returns, by name.

        ``conn`` is the connection of the unit of work in which the timer starts waiting, ``instance`` the
        live instance and ``now`` the engine clock's time; later providers win on a clash of names.  The
        engine itself offers ``now()``; ``working_days``, ``working_hours`` and ``due_date`` refuse until a
        provider gives them (``engine.timer_specs``).  Adding the same provider again changes nothing.
        """
        if provider not in self.script_engine.timer_providers:
            self.script_engine.timer_providers.append(provider)

    # -- definitions (see engine/definitions.py) ---------------------------------------------------
    def deploy(
        self, documents: Sequence[tuple[str, bytes]], deployed_by: str = "system"
    ) -> list[dict[str, Any]]:
        """Validate BPMN documents; store each changed process as a new version (``Definitions.deploy``)."""
        return self.library.deploy(documents, deployed_by)

    def lint(
        self, documents: Sequence[tuple[str, bytes]], *, level: int | None = None, fallback: Any = None
    ) -> list[dict[str, Any]]:
        """Check BPMN documents without deploying them (``Definitions.lint``); every problem found."""
        return self.library.lint(documents, level=level, fallback=fallback)

    def definitions(self, key: str | None = None) -> list[dict[str, Any]]:
        """Return deployed definition versions (newest first per key)."""
        return self.library.list(key)

    def resolver(self, uow: UnitOfWork) -> Callable[[str], tuple[str, bytes] | None]:
        """Return a lookup of deployed BPMN documents by process id, inside ``uow``."""
        return self.library.resolver(uow)

    def start(
        self,
        key: str,
        data: dict[str, Any] | None = None,
        business_key: str | None = None,
        actor: str = "system",
        prepare: Preparer | None = None,
        instance_id: str | None = None,
    ) -> dict[str, Any]:
        """Start an instance of the latest version of process ``key`` and run it to its first wait.

        Args:
            key: the process key.
            data: initial process data.
            business_key: the business key (e.g. a dossier code).
            actor: who starts it.
            prepare: runs first in the same transaction and returns (business key, extra data).
            instance_id: the id to give the instance (default: a new UUID).

        Returns:
            The instance view (id, status, ready tasks, ...).

        Raises:
            NotFoundError: no process with that key is deployed.
            ValidationError: ``data`` or ``business_key`` is malformed.
        """
        data = self.validate_data(data)
        business_key = self.validate_business_key(business_key)
        with self.store.unit_of_work() as uow:
            head = uow.latest_definition(key)
            if head is None:
                raise NotFoundError(f"No process '{key}' is deployed", key=key)
            if prepare is not None:
                prepared_key, extra = prepare(uow.conn)
                business_key = self.validate_business_key(prepared_key or business_key)
                data = {**data, **self.validate_data(extra)}
            spec, subprocess_specs = self.library.specs(uow, head.id)
            workflow = MotcuaWorkflow(spec, subprocess_specs, script_engine=self.script_engine)
            instance = Instance(
                id=instance_id or str(uuid.uuid4()),
                definition_id=head.id,
                process_key=key,
                business_key=business_key,
                row_version=0,
                workflow=workflow,
                created_at=self.clock.now(),
                conn=uow.conn,
            )
            workflow.motcua_instance = instance
            for task in workflow.get_tasks(state=TaskState.READY):
                task.set_data(**data)
            log = UnitLog(instance.id, actor, self.clock.now())
            log.record("started", version=head.version, business_key=business_key)
            self.run_steps(instance, log)
            self.save(uow, instance, log, started_by=actor)
        view = summary(instance)
        self.instances.put(instance)
        return view

    def start_once(
        self,
        key: str,
        data: dict[str, Any] | None,
        *,
        owner: str,
        idempotency_key: str,
        business_key: str | None = None,
        prepare: Preparer | None = None,
        fingerprint: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Start an instance unless ``owner`` already did with the same ``idempotency_key``.

        The key is recorded in the start's own transaction, so a retried request (even two at once) yields
        the same instance and never a second one.

        Args:
            prepare: as for ``start`` (it then gives the business key).
            fingerprint: what makes two requests "the same" (default: the key, data and business key).

        Returns:
            (instance view, True when this call started it).

        Raises:
            ConflictError: the key was already used for a different request.
            NotFoundError, ValidationError: as ``start``.
        """
        request = fingerprint or json.dumps(
            [key, data, business_key], sort_keys=True, default=str, ensure_ascii=False
        )
        digest = hashlib.sha256(request.encode()).hexdigest()
        earlier = self._earlier_start(owner, idempotency_key, digest)
        if earlier is not None:
            return self.show(earlier), False
        new_id = str(uuid.uuid4())

        def record(conn: Any) -> tuple[str | None, dict[str, Any]]:
            UnitOfWork(conn).insert_start_request(
                {
                    "owner": owner,
                    "key": idempotency_key,
                    "request_sha256": digest,
                    "instance_id": new_id,
                    "created_at": self.clock.now(),
                }
            )
            return prepare(conn) if prepare is not None else (business_key, {})

        try:
            return self.start(key, data, business_key, actor=owner, prepare=record, instance_id=new_id), True
        except IntegrityError:  # the same key started concurrently: answer with that instance
            earlier = self._earlier_start(owner, idempotency_key, digest)
            if earlier is None:
                raise
            return self.show(earlier), False

    def _earlier_start(self, owner: str, key: str, digest: str) -> str | None:
        with self.store.unit_of_work(write=False) as uow:
            row = uow.start_request(owner, key)
        if row is None:
            return None
        if row.request_sha256 != digest:
            raise ConflictError(
                "This Idempotency-Key was already used for a different request", idempotency_key=key
            )
        return str(row.instance_id)

    def checkout(self, uow: UnitOfWork, instance_id: str, known_version: int | None = None) -> Instance:
        """Return the live instance for a unit of work: the cached one if still current, else loaded.

        Args:
            uow: the unit of work.
            instance_id: the instance.
            known_version: the row version already read in this unit of work, which saves a query
                when the cached instance is current.

        Raises:
            NotFoundError: no such instance.
        """
        instance = self._current(uow, instance_id, known_version)
        instance.conn = uow.conn  # for timer functions evaluated in this unit of work
        return instance

    def _current(self, uow: UnitOfWork, instance_id: str, known_version: int | None) -> Instance:
        if known_version is not None:
            cached = self.instances.take(instance_id, known_version)
            if cached is not None:
                return cached
        elif self.instances.contains(instance_id):
            head = uow.instance_head(instance_id)  # without the state: the cached copy may be current
            if head is None:
                raise NotFoundError(f"Instance {instance_id} does not exist", instance_id=instance_id)
            cached = self.instances.take(instance_id, head.row_version)
            if cached is not None:
                return cached
        row = uow.instance_row(instance_id)  # nothing usable in memory: the head and the state in one read
        if row is None:
            raise NotFoundError(f"Instance {instance_id} does not exist", instance_id=instance_id)
        return self._load(uow, row)

    def _load(self, uow: UnitOfWork, head: Any) -> Instance:
        """Restore an instance from its row; ``head`` is the whole row, or the row without its state (which
        is read then)."""
        state = head if "state" in head._fields else uow.instance_state(head.id)
        if state is None:
            raise NotFoundError(f"Instance {head.id} does not exist", instance_id=head.id)
        spec, subprocess_specs = self.library.specs(uow, head.definition_id)
        workflow = self.codec.loads(
            state.state, state.state_format, spec, subprocess_specs, script_engine=self.script_engine
        )
        # Re-attach our sandboxed engine: SpiffWorkflow would otherwise give a restored workflow its
        # unrestricted default engine.
        workflow.script_engine = self.script_engine
        instance = Instance(
            id=head.id,
            definition_id=head.definition_id,
            process_key=head.process_key,
            business_key=head.business_key,
            row_version=state.row_version,
            workflow=workflow,
            created_at=head.created_at,
        )
        workflow.motcua_instance = instance
        return instance

    def save(self, uow: UnitOfWork, instance: Instance, log: UnitLog, started_by: str | None = None) -> None:
        """Write an instance's state, projections, audit entries and incidents in ``uow``.

        Raises:
            ConflictError: another writer changed the instance since it was loaded.
        """
        workflow = instance.workflow
        now = self.clock.now()
        for prefetched in log.prefetched.values():
            prefetched()  # before the writes are queued (``Prefetched``)
        projection = project(workflow, instance.business_key)
        values: dict[str, Any] = {
            "status": projection.status,
            "state_format": STATE_FORMAT,
            "updated_at": now,
            "completed_at": now if workflow.completed else None,
        }
        if workflow.completed and workflow.success:
            log.record("completed")
        if instance.row_version and uow.queued:
            # PostgreSQL: the row's version (checked, and so locked) and everything derived from the process
            # go to the server first, and it writes them while the state is serialised here; only the
            # state's own write and the COMMIT are left for the end of the unit.
            uow.write_instance(
                instance.id, instance.row_version, values, (instance.projection, projection), log.audit
            )
            self._write_rest(uow, instance, projection, log)
            uow.send_queued()
            uow.write_instance_state(instance.id, self.codec.dumps(workflow))
            self._saved(instance, projection)
            return
        values["state"] = self.codec.dumps(workflow)
        if instance.row_version == 0:
            uow.insert_instance(
                {
                    **values,
                    "id": instance.id,
                    "definition_id": instance.definition_id,
                    "process_key": instance.process_key,
                    "business_key": instance.business_key,
                    "row_version": 1,
                    "started_by": started_by,
                    "created_at": instance.created_at,
                }
            )
            uow.insert_projection(instance.id, projection)
            uow.add_audit(log.audit)
        else:
            projections = (instance.projection, projection)
            uow.write_instance(instance.id, instance.row_version, values, projections, log.audit)
        self._write_rest(uow, instance, projection, log)
        self._saved(instance, projection)

    def _write_rest(self, uow: UnitOfWork, instance: Instance, projection: Projection, log: UnitLog) -> None:
        """Write the unit's incidents and let the listeners write theirs."""
        for incident in log.incidents:
            uow.add_incident(incident)
        if self.listeners:
            self._notify(uow, instance, projection, log)

    @staticmethod
    def _saved(instance: Instance, projection: Projection) -> None:
        instance.projection = projection
        instance.row_version += 1
        instance.conn = None  # the unit of work ends here; a cached instance keeps no connection

    def _notify(self, uow: UnitOfWork, instance: Instance, projection: Projection, log: UnitLog) -> None:
        change = InstanceChange(
            instance_id=instance.id,
            process_key=instance.process_key,
            business_key=instance.business_key,
            created=instance.row_version == 0,
            projection=projection,
            audit=tuple(log.audit),
            data=current_data(instance.workflow),
            actor=log.actor,
            now=log.now,
            submitted=dict(log.submitted),
            prefetched=dict(log.prefetched),
            previous_ready=(
                frozenset()
                if instance.row_version == 0
                else frozenset(instance.projection.ready_tasks)
                if instance.projection is not None
                else None
            ),
        )
        for listener in self.listeners:
            listener(uow.conn, change)

    def show(self, instance_id: str) -> dict[str, Any]:
        """Return the state, data, tasks, timers, subscriptions, incidents and history of an instance.

        Timers are the pending wake-ups, earliest first, each with whether it is due and whether a worker
        holds it now (``views.timer_view``).

        Raises:
            NotFoundError: no such instance.
        """
        now = self.clock.now()
        return dict(
            self._read(
                instance_id,
                lambda _head, wf: workflow_view(wf),
                then=lambda head, parts, uow: instance_view(head, parts, uow, now),
            )
        )

    def data(self, instance_id: str) -> dict[str, Any]:
        """Return the current process data of an instance (``views.current_data``): ``show``'s ``data``
        without the queries for its tasks, waits and history.

        Raises:
            NotFoundError: no such instance.
        """
        return self._read(instance_id, lambda _head, wf: current_data(wf))

    def _read(
        self,
        instance_id: str,
        use: Callable[[Any, BpmnWorkflow], Any],
        then: Callable[[Any, Any, UnitOfWork], Any] | None = None,
    ) -> Any:
        """Call ``use(head, workflow)`` on the current workflow of an instance, read-only; with ``then``,
        return ``then(head, what use returned, uow)``, in the same unit of work.

        A cached workflow is used while the cache's lock is held (no unit of work may change it meanwhile),
        so ``use`` only reads the workflow; queries go in ``then``, which runs after the lock is let go.
        A workflow loaded here is offered to the cache: the next unit of work on the instance in this
        process (typically the task its reader is about to complete) then does not load it again.
        """
        with self.store.unit_of_work(write=False) as uow:
            cached = self.instances.contains(instance_id)
            # Without the state when the cached copy may be current; else the head and the state in one read.
            head = uow.instance_head(instance_id) if cached else uow.instance_row(instance_id)
            if head is None:
                raise NotFoundError(f"Instance {instance_id} does not exist", instance_id=instance_id)
            found = (
                self.instances.peek(
                    instance_id, head.row_version, lambda instance: (use(head, instance.workflow),)
                )
                if cached
                else None
            )
            if found is not None:
                return found[0] if then is None else then(head, found[0], uow)
            loaded = self._load(uow, head)
            result = use(head, loaded.workflow)
            if then is not None:
                result = then(head, result, uow)
        self.instances.offer(loaded)
        return result

    def tasks(self, instance_id: str | None = None, lane: str | None = None) -> list[dict[str, Any]]:
        """Return ready user tasks, oldest first, optionally of one instance or one lane."""
        with self.store.unit_of_work(write=False) as uow:
            return [dict(row._mapping) for row in uow.ready_tasks(instance_id=instance_id, lane=lane)]

    def now(self) -> datetime:
        """Return the engine clock's current time."""
        return self.clock.now()
