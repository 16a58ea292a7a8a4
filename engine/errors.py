"""The one error tree of the domain.

Every failure the engine or a handler reports to its callers is a ``MotcuaError``.  The edges (HTTP API,
command line) map these classes to status codes and exit codes in one place; nothing in ``engine/`` or
``handlers/`` knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class MotcuaError(Exception):
    """Base class of every domain error.

    Attributes:
        message: a human-readable sentence saying what is wrong.
        details: JSON-able extra facts (ids, fields) for machine readers.
    """

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """Return the error as a JSON-able dict with its code, message and details."""
        return {"code": self.code, "message": self.message, **self.details}


class DefinitionError(MotcuaError):
    """A BPMN document cannot be deployed: malformed, unsafe or invalid.

    Carries where the problem is: ``file``, ``line`` and ``element_id`` when known.
    """

    code = "definition_invalid"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        element_id: str | None = None,
        problems: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, file=file, line=line, element_id=element_id, problems=problems)
        self.file = file
        self.line = line
        self.element_id = element_id

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.file, self.line) if part is not None)
        element = f" [{self.element_id}]" if self.element_id else ""
        return f"{where}{element}: {self.message}" if where or element else self.message


class ValidationError(MotcuaError):
    """Input data is wrong.  ``errors`` maps each bad field to its messages."""

    code = "validation_failed"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, errors=errors or {})
        self.errors = errors or {}


class NotFoundError(MotcuaError):
    """The thing asked for does not exist (or the caller may not know that it does)."""

    code = "not_found"


class ConflictError(MotcuaError):
    """Another writer changed the same instance first, or the request clashes with the current state."""

    code = "conflict"


class StaleVersionError(ConflictError):
    """The instance row was not at the version a unit of work started from: another writer committed first."""


class TaskStateError(ConflictError):
    """The task exists but is not in a state that allows the requested action."""

    code = "task_not_ready"


class ScriptError(MotcuaError):
    """A script task, condition or expression failed or broke the sandbox rules."""

    code = "script_failed"


class SandboxViolation(ScriptError):
    """A script tried something the sandbox forbids (imports, dunder access, I/O, time limit)."""

    code = "sandbox_violation"


class HandlerError(MotcuaError):
    """A service-task handler failed.

    Args:
        message: what went wrong, for the incident list.
        retryable: True when trying again later may succeed (timeouts, a gateway that is down).
    """

    code = "handler_failed"

    def __init__(self, message: str, *, retryable: bool = False, **details: Any) -> None:
        super().__init__(message, retryable=retryable, **details)
        self.retryable = retryable


class UnknownOperatorError(HandlerError):
    """A service task names an operator that no handler is registered for."""

    code = "unknown_operator"

    def __init__(self, operator: str) -> None:
        super().__init__(f"No handler is registered for operator '{operator}'", operator=operator)


class AuthenticationError(MotcuaError):
    """The caller is not who they claim, or did not say (missing, wrong, expired or revoked credentials)."""

    code = "unauthenticated"


class ForbiddenError(MotcuaError):
    """The caller is known but may not do this."""

    code = "forbidden"


class ThrottledError(MotcuaError):
    """Too many attempts in a short time; ``retry_after`` says how many seconds to wait."""

    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after
