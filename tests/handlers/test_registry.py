"""The service-task handler registry: dispatch by operator name, and how failures are classified."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from engine.errors import HandlerError, UnknownOperatorError
from engine.runtime import ServiceContext
from handlers import HandlerRegistry, default_registry

CONTEXT = ServiceContext(
    instance_id="i-1",
    business_key="B",
    element_id="fee",
    task_id="t-1",
    attempt=1,
    now=datetime(2026, 11, 30, 3, 0, tzinfo=UTC),
)


def test_unknown_operator_is_not_retryable():
    with pytest.raises(UnknownOperatorError) as caught:
        HandlerRegistry().dispatch("no.such", {}, CONTEXT)
    assert caught.value.retryable is False and "no.such" in caught.value.message


def test_a_crashing_handler_is_retryable_and_named():
    def crash(params, context):
        raise TimeoutError("gateway timed out")

    registry = HandlerRegistry({"pay.create": crash})
    with pytest.raises(HandlerError) as caught:
        registry.dispatch("pay.create", {}, CONTEXT)
    assert caught.value.retryable is True
    assert caught.value.message == "pay.create failed: TimeoutError: gateway timed out"


def test_handler_errors_pass_through_unchanged():
    def refuse(params, context):
        raise HandlerError("amount mismatch", retryable=False)

    with pytest.raises(HandlerError) as caught:
        HandlerRegistry({"x": refuse}).dispatch("x", {}, CONTEXT)
    assert caught.value.message == "amount mismatch" and caught.value.retryable is False


def test_a_handler_must_return_a_dict():
    with pytest.raises(HandlerError, match="returned list"):
        HandlerRegistry({"x": lambda params, context: [1]}).dispatch("x", {}, CONTEXT)


def test_add_amounts_is_exact_decimal_money():
    result = default_registry().dispatch(
        "util.add_amounts", {"amounts": ["0.1", 0.2, Decimal("200000")]}, CONTEXT
    )
    assert result == {"total": Decimal("200000.3"), "computed_at": date(2026, 11, 30)}
    with pytest.raises(HandlerError, match="amounts must be numbers"):
        default_registry().dispatch("util.add_amounts", {"amounts": ["abc"]}, CONTEXT)


def test_idempotency_key_is_stable_across_attempts():
    later = ServiceContext(**{**CONTEXT.__dict__, "attempt": 3})
    assert later.idempotency_key == CONTEXT.idempotency_key == "i-1:t-1"
