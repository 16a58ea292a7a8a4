"""Handlers the bundled dossier processes call (workflows/bpmn): forms, online payment, result delivery.

Plain functions ``(params, context) -> dict`` without I/O.  Every identifier they return is derived from
``context.idempotency_key``, so a retried task gets the same form id, payment reference or postal order.
Talking to a real payment gateway or to the post is a later step: these handlers only record the request.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import HandlerError
from engine.runtime import ServiceContext

CURRENCY = "VND"


def _digest(context: ServiceContext, purpose: str, length: int = 16) -> str:
    """Return a stable upper-case hex id for this task (same for every retry), distinct per purpose."""
    return hashlib.sha256(f"{purpose}:{context.idempotency_key}".encode()).hexdigest()[:length].upper()


def _text(params: dict[str, Any], name: str, operator: str) -> str:
    """Return the non-empty text parameter ``name``.

    Raises:
        HandlerError: the parameter is missing, not text or blank (not retryable).
    """
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise HandlerError(
            f"{operator}: parameter '{name}' must be non-empty text, got {value!r}",
            operator=operator,
            parameter=name,
        )
    return value.strip()


def _amount(params: dict[str, Any], operator: str) -> Decimal:
    """Return parameter ``amount`` as a positive whole number of dong.

    Raises:
        HandlerError: the amount is missing, not a number, not positive, or has a fraction of a dong.
    """
    value = params.get("amount")
    if isinstance(value, bool) or value is None:
        raise HandlerError(
            f"{operator}: parameter 'amount' must be a number, got {value!r}", operator=operator
        )
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise HandlerError(
            f"{operator}: parameter 'amount' must be a number, got {value!r}", operator=operator
        ) from exc
    if not amount.is_finite() or amount <= 0:
        raise HandlerError(
            f"{operator}: parameter 'amount' must be more than 0 {CURRENCY}, got {value!r}", operator=operator
        )
    if amount != amount.to_integral_value():
        raise HandlerError(
            f"{operator}: parameter 'amount' must be a whole number of {CURRENCY}, got {value!r}",
            operator=operator,
        )
    return amount.quantize(Decimal(1))


def forms_prefill(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
    """Prepare the declared data for printing on the procedure's form (level 2).

    Params:
        fields: the data the applicant declared (a dict of field name to value).
        procedure_code: optional, the procedure whose form is printed.

    Returns:
        ``{"form_id", "prefilled": True, "fields"}``; ``form_id`` references the pre-filled form to print.

    Raises:
        HandlerError: ``fields`` is not a dict (not retryable).
    """
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise HandlerError(
            f"forms.prefill: parameter 'fields' must be the declared data as an object, got {fields!r}",
            operator="forms.prefill",
            parameter="fields",
        )
    procedure = params.get("procedure_code")
    prefix = f"{procedure}-" if isinstance(procedure, str) and procedure.strip() else ""
    return {
        "form_id": f"FORM-{prefix}{_digest(context, 'forms.prefill', 12)}",
        "prefilled": True,
        "fields": fields,
    }


def payment_request(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
    """Record a request for online payment of ``amount`` VND (level 4); the gateway call comes later.

    Params:
        amount: the fee total (Decimal, number or numeric text), a positive whole number of dong.
        dossier_code: optional, echoed back for the payment order.

    Returns:
        ``{"payment_ref", "amount" (Decimal), "currency": "VND", "requested_at"}`` and ``dossier_code``
        when given; ``payment_ref`` is the same for every retry of the task.

    Raises:
        HandlerError: ``amount`` is missing or invalid (not retryable).
    """
    result: dict[str, Any] = {
        "payment_ref": f"PAY-{_digest(context, 'payment.request')}",
        "amount": _amount(params, "payment.request"),
        "currency": CURRENCY,
        "requested_at": context.now,
    }
    if params.get("dossier_code"):
        result["dossier_code"] = str(params["dossier_code"])
    return result


def delivery_online(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
    """Record that the electronic result was made available to the applicant online.

    Returns:
        ``{"delivered_at", "channel": "online"}``.
    """
    return {"delivered_at": context.now, "channel": "online"}


def delivery_post(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
    """Register a postal order for the result (public post); the post later sends ``post.delivered``.

    Params:
        address: where the result goes (required).
        recipient: optional, the addressee.
        dossier_code: optional, echoed back.

    Returns:
        ``{"postal_order", "status": "registered", "address"}`` plus ``recipient``/``dossier_code`` when
        given; ``postal_order`` is the same for every retry of the task.

    Raises:
        HandlerError: ``address`` is missing or blank (not retryable).
    """
    address = _text(params, "address", "delivery.post")
    result: dict[str, Any] = {
        "postal_order": f"POST-{_digest(context, 'delivery.post', 12)}",
        "status": "registered",
        "address": address,
    }
    for name in ("recipient", "dossier_code"):
        if params.get(name):
            result[name] = str(params[name])
    return result


HANDLERS = {
    "forms.prefill": forms_prefill,
    "payment.request": payment_request,
    "delivery.online": delivery_online,
    "delivery.post": delivery_post,
}
