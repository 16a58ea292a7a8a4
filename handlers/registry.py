"""The registry of service-task handlers: one dict from operator name to function, no if/elif chains."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from engine.errors import HandlerError, UnknownOperatorError
from engine.runtime import ServiceContext

Handler = Callable[[dict[str, Any], ServiceContext], dict[str, Any]]


class HandlerRegistry(Mapping[str, Handler]):
    """Maps operator names (``"fees.compute"``) to handler functions and dispatches calls to them."""

    def __init__(self, handlers: Mapping[str, Handler] | None = None) -> None:
        self._handlers: dict[str, Handler] = dict(handlers or {})

    def register(self, operator: str, handler: Handler) -> None:
        """Register ``handler`` for ``operator``, replacing an earlier one."""
        self._handlers[operator] = handler

    def __getitem__(self, operator: str) -> Handler:
        return self._handlers[operator]

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)

    def dispatch(self, operator: str, params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
        """Call the handler of ``operator``.

        Raises:
            UnknownOperatorError: nothing is registered under that name (not retryable).
            HandlerError: the handler failed; any other exception counts as a retryable failure.
        """
        handler = self._handlers.get(operator)
        if handler is None:
            raise UnknownOperatorError(operator)
        try:
            result = handler(params, context)
        except HandlerError:
            raise
        except Exception as exc:  # an unexpected crash of a handler may be transient: retry it
            raise HandlerError(
                f"{operator} failed: {type(exc).__name__}: {exc}", retryable=True, operator=operator
            ) from exc
        if not isinstance(result, dict):
            raise HandlerError(f"{operator} returned {type(result).__name__}, not a dict", operator=operator)
        return result


def default_registry() -> HandlerRegistry:
    """Return a registry with every handler that ships with motcua."""
    from . import builtin, dossier_ops

    return HandlerRegistry({**builtin.HANDLERS, **dossier_ops.HANDLERS})
