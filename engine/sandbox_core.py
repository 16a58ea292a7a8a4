"""The core of the sandbox's rules: the state of one run (deadline, first rule break) and :func:`refuse`.

Every refusal goes through :func:`refuse`, which raises ``SandboxViolation`` and records the first refusal
of the current run, so that a script cannot hide a rule break by catching the exception.  This is the
lowest of the ``engine.sandbox_*`` modules: the others import it, it imports none of them.
"""

from __future__ import annotations

import contextvars
import reprlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn, TypeVar

from .errors import SandboxViolation

SCRIPT_FILENAME = "<script>"

T = TypeVar("T")
_now = time.monotonic
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 4, 400, 200


def short_text(value: Any) -> str:
    """``str(value)``, but containers abridged (a shared structure can be astronomically long as text)."""
    return _SHORT_REPR.repr(value) if isinstance(value, (list, tuple, dict, set, frozenset)) else str(value)


class RunState:
    """The deadline and the first rule break of one run of sandboxed code."""

    __slots__ = ("deadline", "limit", "line", "violation")

    def __init__(self, limit: float) -> None:
        self.limit, self.deadline = limit, _now() + limit
        self.violation: str | None = None
        self.line: int | None = None

    def tick(self) -> None:
        """Refuse to go on once the deadline has passed (called in every loop and function body)."""
        if _now() > self.deadline:
            refuse(f"Script exceeded its time limit of {self.limit:g} s")

    def getiter(self, ob: Iterable[T]) -> Iterator[T]:
        """Return an iterator over ``ob`` that checks the deadline at every step."""
        return self._ticking(iter(ob))

    def _ticking(self, it: Iterator[T]) -> Iterator[T]:
        deadline = self.deadline
        for item in it:
            if _now() > deadline:
                self.tick()
            yield item


CURRENT_RUN: contextvars.ContextVar[RunState | None] = contextvars.ContextVar("sandbox_run", default=None)


def _script_line() -> int | None:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == SCRIPT_FILENAME:
            return frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


def refuse(message: str) -> NoReturn:
    """Record ``message`` as the current run's rule break (if it is the first) and raise it.

    Raises:
        SandboxViolation: always.
    """
    state = CURRENT_RUN.get()
    if state is not None and state.violation is None:
        state.violation, state.line = message, _script_line()
    raise SandboxViolation(message)
