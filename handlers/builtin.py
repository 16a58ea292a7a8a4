"""General-purpose handlers that any procedure may use."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import HandlerError
from engine.runtime import ServiceContext


def add_amounts(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
    """Sum money amounts exactly (``amounts``: list of numbers or numeric strings) into ``total``.

    Raises:
        HandlerError: an amount is not a number (not retryable).
    """
    try:
        total = sum((Decimal(str(value)) for value in params.get("amounts", [])), Decimal(0))
    except (InvalidOperation, TypeError) as exc:
        raise HandlerError(f"amounts must be numbers: {params.get('amounts')!r}") from exc
    return {"total": total, "computed_at": context.now.date()}


def due_in_days(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
    """Return the calendar date ``days`` after now (working-day calendars come with the dossier issue)."""
    days = int(params.get("days", 0))
    return {"due_date": (context.now + timedelta(days=days)).date()}


HANDLERS = {
    "util.add_amounts": add_amounts,
    "util.due_in_days": due_in_days,
}
