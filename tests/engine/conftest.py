"""Engine fixtures: engines over the per-backend test database, a controllable clock, test handlers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.facade import Engine
from engine.runtime import RetryPolicy, ServiceContext
from engine.store import Store, create_db_engine
from handlers import HandlerRegistry, default_registry

ENGINE_DATA = Path(__file__).resolve().parent.parent / "data" / "engine"


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


class Calls:
    """Records handler calls and decides their outcome."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any], ServiceContext]] = []
        self.plan: list[Exception | None] = []

    def handler(self, name: str) -> Callable[[dict[str, Any], ServiceContext], dict[str, Any]]:
        def handle(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
            self.seen.append((name, params, context))
            outcome = self.plan.pop(0) if self.plan else None
            if outcome is not None:
                raise outcome
            return {"ok": True, "attempt": context.attempt, "key": context.idempotency_key}

        return handle


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def registry(calls: Calls) -> HandlerRegistry:
    registry = default_registry()
    registry.register("test.remote", calls.handler("test.remote"))
    return registry


@pytest.fixture
def make_engine(db_url: str, clock: FakeClock, registry: HandlerRegistry) -> Iterator[Callable[..., Engine]]:
    """Build engines on the test database; each call is a fresh process as far as memory goes."""
    made: list[Engine] = []

    def make(**overrides: Any) -> Engine:
        options: dict[str, Any] = {
            "dispatcher": registry.dispatch,
            "known_operators": list(registry),
            "clock": clock,
            "retry_policy": RetryPolicy(retries=3, backoff_base_seconds=30, backoff_max_seconds=600),
            "script_time_limit": 1.0,
        }
        options.update(overrides)
        engine = Engine(Store(create_db_engine(db_url)), **options)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.store.engine.dispose()


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


def bpmn_file(name: str) -> tuple[str, bytes]:
    """Return (file name, bytes) of a BPMN fixture under tests/data/engine."""
    path = ENGINE_DATA / name
    return (path.name, path.read_bytes())
