"""Wake-ups: firing due BPMN timers and service retries, safe across many workers, and stale claims.

A mixin of ``Engine`` (beside ``InstanceOps``): each wake-up is claimed with a lease in a short transaction,
then fired in its instance's own unit of work, which alone makes it count (see ``fire_due_timers``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .errors import ConflictError, MotcuaError, NotFoundError, TaskStateError
from .instance_ops import task_by_id
from .projection import DUE_AT, RETRY_AT, timer_due_at
from .runtime import ATTEMPTS, Clock, Instance, UnitLog, wake_task
from .store import Store


class WakeUps:
    """Firing what is due; ``Engine`` provides what is declared here (see ``InstanceOps``)."""

    store: Store
    clock: Clock
    _on_instance: Callable[..., dict[str, Any]]
    run_steps: Callable[[Instance, UnitLog], None]

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
        task = task_by_id(instance.workflow, wake["task_id"])
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


class _AlreadyDone(ConflictError):
    """The claimed wake-up already happened (another worker fired it after this one's lease ran out)."""


def _same_time(a: datetime | None, b: datetime) -> bool:
    return a is not None and abs((a - b).total_seconds()) < 0.001


def _mark_fired(task: Task) -> None:
    """Tell SpiffWorkflow the timer's time has come, by our clock rather than its own."""
    task.internal_data.pop(DUE_AT, None)  # a cycle's next round is pinned afresh
    if isinstance(task.task_spec.event_definition, CycleTimerEventDefinition):
        value = task.internal_data.get("event_value")
        if isinstance(value, dict):
            value["next"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    else:
        task.internal_data["event_fired"] = True
