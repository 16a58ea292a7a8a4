"""Acting on running instances: complete a task, deliver a message, fire wake-ups, retry incidents.

A mixin of ``Engine`` so that each operation reads as one short unit of work.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .errors import ConflictError, MotcuaError, NotFoundError, TaskStateError, ValidationError
from .projection import DUE_AT, RETRY_AT, timer_due_at
from .runtime import (
    ATTEMPTS,
    Clock,
    Instance,
    InstanceCache,
    RetryPolicy,
    UnitLog,
    advance,
    wake_task,
)
from .store import Store
from .views import summary

if TYPE_CHECKING:
    from .store import UnitOfWork

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class InstanceOps:
    """Operations on existing instances; ``Engine`` is built on it and provides what is declared here."""

    store: Store
    clock: Clock
    retry_policy: RetryPolicy
    instances: InstanceCache
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
            action(instance, log)
            if resolve_incidents:
                uow.resolve_incidents(instance.id, log.now, actor)
            self.save(uow, instance, log)
        self.instances.put(instance)
        return summary(instance)

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
    ) -> dict[str, Any]:
        """Complete a ready user task with ``data`` and run the instance to its next wait.

        Args:
            task_id: the task.
            data: the form data.
            actor: who completes it; a task claimed by someone else cannot be completed.
            expected_version: the instance row version the caller saw (e.g. from an ETag); a stale one
                is refused instead of silently overwriting a newer state.

        Raises:
            NotFoundError: no such task.
            TaskStateError: the task is no longer ready (e.g. someone completed it first).
            ConflictError: claimed by someone else, a stale version, or a concurrent writer.
            ValidationError: ``data`` is malformed.
        """
        data = self.validate_data(data)

        def locate(uow: UnitOfWork) -> tuple[str, int | None]:
            found = uow.ready_task_version(task_id)
            if found is None:
                raise _missing_task(uow, task_id)
            instance_id, version, claimed_by = found
            if claimed_by is not None and claimed_by != actor:
                raise ConflictError(f"Task {task_id} is claimed by {claimed_by}", claimed_by=claimed_by)
            if expected_version is not None and expected_version != version:
                raise ConflictError(
                    "The dossier changed since you loaded it; reload and try again",
                    expected_version=expected_version,
                    row_version=version,
                )
            if claimed_by is not None:
                uow.release(task_id)
            return instance_id, version

        def act(instance: Instance, log: UnitLog) -> None:
            task = _task(instance.workflow, task_id)
            if task is None or not task.has_state(TaskState.READY) or not task.task_spec.manual:
                raise TaskStateError(f"Task {task_id} is not ready", task_id=task_id)
            task.set_data(**data)
            task.run()
            log.submitted[task_id] = dict(data)
            log.record("task_completed", task, fields=sorted(data), lane=task.task_spec.lane)
            self.run_steps(instance, log)

        return self._on_instance(locate, actor, act)

    # -- claims -----------------------------------------------------------------------------------
    def claim_task(self, task_id: str, actor: str, *, force: bool = False) -> dict[str, Any]:
        """Mark a ready task as being worked on by ``actor`` (``force`` takes it over from someone else).

        Raises:
            NotFoundError: no such ready task.
            ConflictError: someone else holds the claim.
        """
        with self.store.unit_of_work() as uow:
            row = uow.ready_task(task_id)
            if row is None:
                raise _missing_task(uow, task_id)
            current = uow.claim_of(task_id)
            if current is not None and current.claimed_by != actor and not force:
                raise ConflictError(
                    f"Task {task_id} is claimed by {current.claimed_by}", claimed_by=current.claimed_by
                )
            values = {
                "task_id": task_id,
                "instance_id": row.instance_id,
                "claimed_by": actor,
                "claimed_at": self.clock.now(),
            }
            uow.claim(values)
        return values

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
    ) -> dict[str, Any]:
        """Deliver message ``name`` to the one instance waiting for it with matching correlation values.

        ``correlation`` may hold ``business_key`` and the message's correlation properties.

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
            return str(rows[0].instance_id), None

        def act(instance: Instance, log: UnitLog) -> None:
            task = _task(instance.workflow, waiting[0].task_id)
            if task is None or not task.has_state(TaskState.WAITING):
                raise ConflictError(f"Instance {instance.id} no longer waits for message '{name}'")
            definition = task.task_spec.event_definition
            # The payload carries the correlation values, so the message's retrieval expressions find them.
            expected = {**json.loads(waiting[0].correlation), **correlation}
            payload = {**{k: v for k, v in expected.items() if k != "business_key"}, **data}
            event = BpmnEvent(definition, payload=payload, correlations=dict(instance.workflow.correlations))
            instance.workflow.send_event(event)
            if getattr(definition, "message_var", None) is None:
                task.data.update(payload)
            log.record("message_received", task, message=name, fields=sorted(payload))
            self.run_steps(instance, log)

        return self._on_instance(locate, actor, act)

    # -- wake-ups ---------------------------------------------------------------------------------
    def fire_due_timers(
        self,
        now: datetime | None = None,
        limit: int = 100,
        actor: str = "scheduler",
        *,
        kind: str | None = None,
        worker: str | None = None,
        lease_seconds: float = 30.0,
        on_claimed: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Fire the BPMN timers and service retries that are due at ``now`` (default: the clock), once each.

        Safe with any number of workers on any number of machines: the due rows are first claimed for
        ``lease_seconds`` in a short transaction (see ``UnitOfWork.claim_due_timers``); then each wake-up
        is fired in its instance's own unit of work, which also deletes its row.  A worker that dies after
        claiming loses nothing (the lease runs out and another worker takes the rows); one that dies while
        firing loses nothing either (the transaction rolls back).  A wake-up fires only in a transaction
        that commits the instance with it, so it never fires twice.

        Args:
            kind: "timer" or "retry" (default: both).
            worker: who claims (default: a name unique to this call).
            on_claimed: called with the claimed rows before any is fired (for fault-injection tests).

        Returns:
            One dict per claimed wake-up: instance_id, task_id, element_id, kind, due_at, outcome
            ("fired" or "skipped: ..."), fired_at.
        """
        now = now or self.clock.now()
        worker = worker or f"call-{uuid4().hex[:12]}"
        lease_until = now + timedelta(seconds=lease_seconds)
        with self.store.unit_of_work() as uow:
            claimed = uow.claim_due_timers(
                now, worker=worker, lease_until=lease_until, kind=kind, limit=limit
            )
        if on_claimed is not None:
            on_claimed(claimed)
        return [self._fire_claimed(wake, worker, actor, lease_seconds) for wake in claimed]

    def _fire_claimed(
        self, wake: dict[str, Any], worker: str, actor: str, lease_seconds: float
    ) -> dict[str, Any]:
        """Fire one claimed wake-up in its instance's unit of work; give the claim back when it cannot."""

        try:
            self._on_instance(wake["instance_id"], actor, functools.partial(self._wake, wake))
            outcome = "fired"
        except _AlreadyDone as exc:
            outcome = f"skipped: {exc.message}"
        except (ConflictError, NotFoundError, TaskStateError) as exc:
            # Someone else changed the instance meanwhile: the wake-up is due again right away.
            outcome = f"skipped: {exc.message}"
            self._give_back(wake, worker, None)
        except MotcuaError as exc:
            # A failure outside any task (a listener refused, a timer expression broke): try later.
            outcome = f"failed: {exc.message}"
            self._give_back(wake, worker, self.clock.now() + timedelta(seconds=lease_seconds))
        return {**wake, "outcome": outcome, "fired_at": self.clock.now()}

    def _give_back(self, wake: dict[str, Any], worker: str, until: datetime | None) -> None:
        try:
            with self.store.unit_of_work() as uow:
                uow.release_timer(wake["task_id"], worker, until)
        except ConflictError:
            pass  # the lease runs out by itself

    def release_stale_claims(
        self, older_than: timedelta, *, limit: int = 200, actor: str = "scheduler"
    ) -> list[dict[str, Any]]:
        """Drop task claims older than ``older_than`` so that the task goes back to its lane's queue.

        Returns:
            The released claims (task_id, instance_id, claimed_by, claimed_at).
        """
        now = self.clock.now()
        with self.store.unit_of_work() as uow:
            stale = uow.stale_claims(now - older_than, limit)
            for claim in stale:
                uow.release(claim["task_id"])
            uow.add_audit(
                {
                    "instance_id": claim["instance_id"],
                    "task_id": claim["task_id"],
                    "element_id": None,
                    "action": "claim_released",
                    "actor": actor,
                    "at": now,
                    "details": json.dumps(
                        {"claimed_by": claim["claimed_by"], "claimed_at": claim["claimed_at"].isoformat()}
                    ),
                }
                for claim in stale
            )
        return stale

    def _wake(self, wake: dict[str, Any], instance: Instance, log: UnitLog) -> None:
        """Fire one due wake-up (a BPMN timer or a service retry) of an instance.

        The wake-up must still be the one that was claimed: same task, waiting, due at the claimed time
        (a cycle timer that fired meanwhile waits again with a later time; a retry done meanwhile has
        none), so that a worker whose lease ran out cannot fire it a second time.
        """
        task = _task(instance.workflow, wake["task_id"])
        claimed = wake.get("due_at")
        if wake["kind"] == "retry":
            if task is None or not task.has_state(TaskState.ERROR) or RETRY_AT not in task.internal_data:
                raise _AlreadyDone("The retry was already done")
            if claimed is not None and not _same_time(
                datetime.fromisoformat(task.internal_data[RETRY_AT]), claimed
            ):
                raise _AlreadyDone("The retry was already done; the next one is not due yet")
            wake_task(task)
            log.record("retry", task, attempt=int(task.internal_data.get(ATTEMPTS, 0)) + 1)
        else:
            if task is None or not task.has_state(TaskState.WAITING):
                raise _AlreadyDone("The timer already fired")
            if claimed is not None and not _same_time(timer_due_at(task), claimed):
                raise _AlreadyDone("The timer already fired; its next round is not due yet")
            _mark_fired(task)
            lag = round((log.now - claimed).total_seconds(), 3) if claimed is not None else None
            log.record("timer_fired", task, due_at=claimed.isoformat() if claimed else None, lag_seconds=lag)
            instance.workflow.refresh_timers()
        self.run_steps(instance, log)

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


class _AlreadyDone(ConflictError):
    """The claimed wake-up already happened (another worker fired it after this one's lease ran out)."""


def _same_time(a: datetime | None, b: datetime) -> bool:
    return a is not None and abs((a - b).total_seconds()) < 0.001


def _task(workflow: BpmnWorkflow, task_id: str) -> Task | None:
    try:
        return workflow.get_task_from_id(UUID(task_id))
    except (ValueError, TaskNotFoundException):
        return None


def _missing_task(uow: UnitOfWork, task_id: str) -> MotcuaError:
    if uow.task_was_completed(task_id):
        return TaskStateError(f"Task {task_id} is no longer ready: it was already completed", task_id=task_id)
    return NotFoundError(f"Task {task_id} does not exist or is not ready", task_id=task_id)


def _mark_fired(task: Task) -> None:
    """Tell SpiffWorkflow the timer's time has come, by our clock rather than its own."""
    task.internal_data.pop(DUE_AT, None)  # a cycle's next round is pinned afresh
    if isinstance(task.task_spec.event_definition, CycleTimerEventDefinition):
        value = task.internal_data.get("event_value")
        if isinstance(value, dict):
            value["next"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    else:
        task.internal_data["event_fired"] = True


def _json_default(value: Any) -> str:
    from datetime import date
    from decimal import Decimal

    if isinstance(value, date | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")
