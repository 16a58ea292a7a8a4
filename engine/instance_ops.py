"""Acting on running instances: complete a task, deliver a message, fire wake-ups, retry incidents.

A mixin of ``Engine`` so that each operation reads as one short unit of work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .errors import (
    ConflictError,
    MotcuaError,
    NotFoundError,
    StaleVersionError,
    TaskStateError,
    ValidationError,
)
from .runtime import (
    ATTEMPTS,
    Clock,
    Instance,
    InstanceCache,
    Listener,
    Prefetched,
    Prefetcher,
    RetryPolicy,
    UnitLog,
    advance,
    wake_task,
)
from .store import Store
from .views import summary

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .store import UnitOfWork

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_UNREAD: Any = object()  # a claim not read yet: checked by the unit of work itself


class InstanceOps:
    """Operations on existing instances; ``Engine`` is built on it and provides what is declared here."""

    store: Store
    clock: Clock
    retry_policy: RetryPolicy
    instances: InstanceCache
    listeners: list[Listener]
    checkout: Callable[[UnitOfWork, str, int | None], Instance]
    save: Callable[[UnitOfWork, Instance, UnitLog], None]
    show: Callable[[str], dict[str, Any]]

    # -- validation -------------------------------------------------------------------------------
    @staticmethod
    def validate_data(data: Any, field: str = "data") -> dict[str, Any]:
        """Check that process data is an object whose keys are plain variable names.

        Raises:
            ValidationError: naming the field and each bad key.
        """
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ValidationError(f"'{field}' must be a JSON object", {field: ["must be an object"]})
        bad = [key for key in data if not isinstance(key, str) or not _NAME.match(key)]
        if bad:
            raise ValidationError(
                f"'{field}' has keys that are not variable names: {', '.join(map(str, bad))}",
                {
                    f"{field}.{key}": ["must start with a letter and hold only letters, digits and _"]
                    for key in bad
                },
            )
        try:
            json.dumps(data, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"'{field}' cannot be stored: {exc}", {field: [str(exc)]}) from exc
        return data

    @staticmethod
    def validate_business_key(business_key: Any) -> str | None:
        """Check a business key: None or a non-empty string of at most 200 characters.

        Raises:
            ValidationError: on the ``business_key`` field.
        """
        if business_key is None:
            return None
        if not isinstance(business_key, str) or not business_key.strip() or len(business_key) > 200:
            raise ValidationError(
                "'business_key' must be a non-empty string of at most 200 characters",
                {"business_key": ["must be 1-200 characters"]},
            )
        return business_key

    # -- one unit of work on one instance ----------------------------------------------------------
    def _on_instance(
        self,
        instance_id: str | Callable[[UnitOfWork], tuple[str, int | None]],
        actor: str,
        action: Callable[[Instance, UnitLog], None],
        resolve_incidents: bool = False,
    ) -> dict[str, Any]:
        with self.store.unit_of_work() as uow:
            target, version = (instance_id, None) if isinstance(instance_id, str) else instance_id(uow)
            instance = self.checkout(uow, target, version)
            if instance.workflow.completed:
                raise TaskStateError(f"Instance {target} has already completed", instance_id=target)
            log = UnitLog(instance.id, actor, self.clock.now())
            self._prefetch(uow, instance, log)
            action(instance, log)
            if resolve_incidents:
                uow.resolve_incidents(instance.id, log.now, actor)
            self.save(uow, instance, log)
        view = summary(instance)
        self.instances.put(instance)
        return view

    def _prefetch(self, uow: UnitOfWork, instance: Instance, log: UnitLog) -> None:
        """Let the listeners queue the reads they will need, before the steps run (``Prefetcher``)."""
        if instance.business_key is None:
            return
        for listener in self.listeners:
            prefetch: Prefetcher | None = getattr(listener, "prefetch", None)
            if prefetch is not None:
                for name, get in prefetch(uow.conn, instance.business_key).items():
                    log.prefetched[name] = Prefetched(get)

    def run_steps(self, instance: Instance, log: UnitLog) -> None:
        """Run the engine steps of an instance, turning task failures into retries or incidents."""
        advance(instance.workflow, log, self.retry_policy)

    # -- complete ---------------------------------------------------------------------------------
    def complete_task(
        self,
        task_id: str,
        data: dict[str, Any] | None = None,
        actor: str = "system",
        expected_version: int | None = None,
        *,
        seen: tuple[str, int, str | None] | None = None,
    ) -> dict[str, Any]:
        """Complete a ready user task with ``data`` and run the instance to its next wait.

        Args:
            task_id: the task.
            data: the form data.
            actor: who completes it; a task claimed by someone else cannot be completed.
            expected_version: the instance row version the caller saw (e.g. from an ETag); a stale one
                is refused instead of silently overwriting a newer state.
            seen: (instance id, row version, claimant) of the task as the caller has just read them (the
                API does, to check who may act).  The unit of work starts from them instead of reading the
                task again: the cached instance if it holds that version, else the instance row.  The task
                must still be ready in the state it works on, the claim is checked again when the unit
                commits, and if another writer committed meanwhile the completion is tried once more the
                usual way.

        Raises:
            NotFoundError: no such task.
            TaskStateError: the task is no longer ready (e.g. someone completed it first).
            ConflictError: claimed by someone else, a stale version, or a concurrent writer.
            ValidationError: ``data`` is malformed.
        """
        data = self.validate_data(data)
        trusted = self._trusted_start(task_id, expected_version, seen)

        def locate(uow: UnitOfWork) -> tuple[str, int | None]:
            found = trusted or uow.ready_task_version(task_id)
            if found is None:
                raise _missing_task(uow, task_id)
            instance_id, version, claimed_by = found
            _release_for(uow, task_id, actor, claimed_by, read_here=trusted is None)
            if expected_version is not None and expected_version != version:
                raise ConflictError(
                    "The dossier changed since you loaded it; reload and try again",
                    expected_version=expected_version,
                    row_version=version,
                )
            return instance_id, version

        def act(instance: Instance, log: UnitLog) -> None:
            task = task_by_id(instance.workflow, task_id)
            if task is not None and task.task_spec.manual and task.has_state(TaskState.COMPLETED):
                raise TaskStateError(
                    f"Task {task_id} is no longer ready: it was already completed", task_id=task_id
                )
            if task is None or not task.has_state(TaskState.READY) or not task.task_spec.manual:
                raise TaskStateError(f"Task {task_id} is not ready", task_id=task_id)
            task.set_data(**data)
            task.run()
            log.submitted[task_id] = dict(data)
            log.record("task_completed", task, fields=sorted(data), lane=task.task_spec.lane)
            self.run_steps(instance, log)

        try:
            return self._on_instance(locate, actor, act)
        except StaleVersionError:
            if trusted is None:
                raise
        trusted = None  # someone wrote the instance since the caller read it: read it again
        return self._on_instance(locate, actor, act)

    def _trusted_start(
        self, task_id: str, expected_version: int | None, seen: tuple[str, int, str | None] | None
    ) -> tuple[str, int, Any] | None:
        """Where a completion may start without reading its task: the caller's context (read a moment ago,
        in another transaction), else the cached instance the task was last ready in (its claim then
        checked in the server), unless the caller expects another version."""
        if seen is not None:
            return seen
        held = self.instances.holding_task(task_id)
        if held is None or (expected_version is not None and expected_version != held[1]):
            return None
        return (held[0], held[1], _UNREAD)

    # -- claims -----------------------------------------------------------------------------------
    def claim_task(self, task_id: str, actor: str, *, force: bool = False) -> dict[str, Any]:
        """Mark a ready task as being worked on by ``actor`` (``force`` takes it over from someone else).

        One statement takes the claim (``UnitOfWork.take_claim``); the reasons for a refusal are only read
        when it is refused.

        Raises:
            NotFoundError: no such ready task.
            ConflictError: someone else holds the claim.
        """
        now = self.clock.now()
        with self.store.unit_of_work(one_write=True) as uow:  # one statement: no BEGIN/COMMIT round trip
            instance_id = uow.take_claim(task_id, actor, now, force=force)
            if instance_id is None:
                if uow.ready_task(task_id) is None:
                    raise _missing_task(uow, task_id)
                current = uow.claim_of(task_id)
                holder = current.claimed_by if current is not None else None
                raise ConflictError(f"Task {task_id} is claimed by {holder}", claimed_by=holder)
        return {"task_id": task_id, "instance_id": instance_id, "claimed_by": actor, "claimed_at": now}

    def unclaim_task(self, task_id: str, actor: str, *, force: bool = False) -> None:
        """Give a claimed task back to the queue.

        Raises:
            NotFoundError: the task is not claimed.
            ConflictError: someone else holds the claim (and ``force`` is not set).
        """
        with self.store.unit_of_work() as uow:
            current = uow.claim_of(task_id)
            if current is None:
                raise NotFoundError(f"Task {task_id} is not claimed", task_id=task_id)
            if current.claimed_by != actor and not force:
                raise ConflictError(
                    f"Task {task_id} is claimed by {current.claimed_by}", claimed_by=current.claimed_by
                )
            uow.release(task_id)

    # -- messages ---------------------------------------------------------------------------------
    def send_message(
        self,
        name: str,
        correlation: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        actor: str = "system",
        *,
        within: Callable[[Connection], dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """Deliver message ``name`` to the one instance waiting for it with matching correlation values.

        ``correlation`` may hold ``business_key`` and the message's correlation properties.

        Args:
            within: runs inside the message's unit of work, once the waiting instance is found and before
                the message is delivered, with the transaction's connection; what it writes commits with the
                delivery or not at all (e.g. marking a payment paid), what it returns is added to the
                message data, and a domain error it raises aborts the whole unit.

        Raises:
            NotFoundError: no instance waits for this message with these values.
            ConflictError: more than one instance matches (give more correlation values).
            ValidationError: malformed arguments.
        """
        if not isinstance(name, str) or not name:
            raise ValidationError("'name' is required", {"name": ["required"]})
        correlation = self.validate_data(correlation, "correlation")
        data = self.validate_data(data)
        waiting: list[Any] = []

        def locate(uow: UnitOfWork) -> tuple[str, int | None]:
            rows = uow.find_subscriptions(name, correlation)
            instances = {row.instance_id for row in rows}
            if not instances:
                raise NotFoundError(
                    f"No instance is waiting for message '{name}' with {correlation}",
                    message_name=name,
                    correlation=correlation,
                )
            if len(instances) > 1:
                raise ConflictError(
                    f"{len(instances)} instances wait for message '{name}' with "
                    f"{correlation}; give more correlation values",
                    message_name=name,
                )
            waiting.extend(rows)
            return str(rows[0].instance_id), int(rows[0].row_version)

        def act(instance: Instance, log: UnitLog) -> None:
            task = task_by_id(instance.workflow, waiting[0].task_id)
            if task is None or not task.has_state(TaskState.WAITING):
                raise ConflictError(f"Instance {instance.id} no longer waits for message '{name}'")
            definition = task.task_spec.event_definition
            extra: dict[str, Any] = {}
            if within is not None:
                assert instance.conn is not None, "checkout gives the instance its unit's connection"
                extra = self.validate_data(within(instance.conn), "within")
            # The payload carries the correlation values, so the message's retrieval expressions find them.
            expected = {**json.loads(waiting[0].correlation), **correlation}
            payload = {**{k: v for k, v in expected.items() if k != "business_key"}, **data, **extra}
            event = BpmnEvent(definition, payload=payload, correlations=dict(instance.workflow.correlations))
            instance.workflow.send_event(event)
            if getattr(definition, "message_var", None) is None:
                task.data.update(payload)
            log.record("message_received", task, message=name, fields=sorted(payload))
            self.run_steps(instance, log)

        return self._on_instance(locate, actor, act)

    def cancel_instance(self, instance_id: str, reason: str, actor: str = "system") -> dict[str, Any]:
        """Cancel a running instance: every open task is cancelled and its waits are dropped.

        Raises:
            NotFoundError: no such instance.
            TaskStateError: the instance has already ended.
            ValidationError: no reason is given.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("A reason is required to cancel an instance", {"reason": ["required"]})

        def act(instance: Instance, log: UnitLog) -> None:
            instance.workflow.cancel()
            log.record("cancelled", reason=reason)

        return self._on_instance(instance_id, actor, act)

    def retry_incidents(self, instance_id: str, actor: str = "admin") -> dict[str, Any]:
        """Retry every failed task of an instance and resolve its open incidents.

        Raises:
            NotFoundError: no such instance.
            TaskStateError: the instance has no failed task.
        """

        def act(instance: Instance, log: UnitLog) -> None:
            failed = instance.workflow.get_tasks(state=TaskState.ERROR)
            if not failed:
                raise TaskStateError(f"Instance {instance_id} has no failed task", instance_id=instance_id)
            for task in failed:
                task.internal_data[ATTEMPTS] = 0
                wake_task(task)
                log.record("incident_retried", task)
            self.run_steps(instance, log)

        return self._on_instance(instance_id, actor, act, resolve_incidents=True)

    def incidents(self, instance_id: str | None = None) -> list[dict[str, Any]]:
        """Return the open incidents, of one instance or of all."""
        with self.store.unit_of_work(write=False) as uow:
            return [dict(row._mapping) for row in uow.open_incidents(instance_id)]


def task_by_id(workflow: BpmnWorkflow, task_id: str) -> Task | None:
    """Return the task of ``workflow`` with this id (a UUID string), or None when there is none."""
    try:
        return workflow.get_task_from_id(UUID(task_id))
    except (ValueError, TaskNotFoundException):
        return None


def _release_for(uow: UnitOfWork, task_id: str, actor: str, claimed_by: Any, *, read_here: bool) -> None:
    """Let ``actor`` complete a task: refuse if someone else holds its claim, else drop the claim.

    ``claimed_by`` is the claimant as read in this unit of work (``read_here``), as read before it, or
    ``_UNREAD``; a claim not read in this unit is checked again by the unit itself (queued on PostgreSQL),
    since someone may have taken it since.
    """
    if claimed_by is not _UNREAD and claimed_by is not None and claimed_by != actor:
        raise ConflictError(f"Task {task_id} is claimed by {claimed_by}", claimed_by=claimed_by)
    if not read_here:
        uow.release_claim_of(task_id, actor)
    elif claimed_by is not None:
        uow.release(task_id)


def _missing_task(uow: UnitOfWork, task_id: str) -> MotcuaError:
    if uow.task_was_completed(task_id):
        return TaskStateError(f"Task {task_id} is no longer ready: it was already completed", task_id=task_id)
    return NotFoundError(f"Task {task_id} does not exist or is not ready", task_id=task_id)


def _json_default(value: Any) -> str:
    from datetime import date
    from decimal import Decimal

    if isinstance(value, date | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")
