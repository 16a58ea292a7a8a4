"""What BPMN service tasks call: plain functions ``(params, context) -> dict``, registered by operator name.

Handlers never commit, never touch Flask, and are idempotent: the ``context.idempotency_key`` is the same
for every retry of one task.  They raise ``HandlerError(retryable=...)`` to fail.
"""

from .registry import HandlerRegistry, default_registry

__all__ = ["HandlerRegistry", "default_registry"]
