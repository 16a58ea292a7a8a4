"""Handlers the bundled dossier processes call (workflows/bpmn): forms, online payment, result delivery.

Plain functions ``(params, context) -> dict`` without I/O.  Every identifier they return is derived from
``context.idempotency_key``, so a retried task gets the same form id, payment reference or postal order.
The payment request only states what is owed; the citizen pays through ``payments/`` (the provider's IPN
then delivers ``payment.confirmed``).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import HandlerError, ValidationError
from engine.runtime import ServiceContext
from payments.fees import CURRENCY, payment_lines


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
    """Request online payment of a dossier's fee lines (level 4); the citizen then pays at the provider.

    Params:
        fees: the dossier's priced fee lines (process data ``fees``; with the postage line when the result
            goes by post); the lines above 0 are what is paid (``payments.fees.payment_lines``).
        amount: the fee total (Decimal, number or numeric text), a positive whole number of dong; with
            ``fees`` it must equal their total, without them it is the one line paid.
        dossier_code: optional, echoed back for the payment order.

    Returns:
        ``{"payment_ref", "amount" (Decimal), "lines", "currency": "VND", "requested_at"}`` and
        ``dossier_code`` when given; ``payment_ref`` is the same for every retry of the task.  The payment
        service charges exactly ``amount`` for ``lines``.

    Raises:
        HandlerError: ``amount`` or a fee line is missing or invalid, or they disagree (not retryable).
    """
    operator = "payment.request"
    if params.get("fees") is None:
        amount = _amount(params, operator)
        lines = [{"code": None, "description": "Phí, lệ phí", "amount": amount}]
    else:
        lines, amount = _fee_lines(params, operator)
    result: dict[str, Any] = {
        "payment_ref": f"PAY-{_digest(context, operator)}",
        "amount": amount,
        "lines": lines,
        "currency": CURRENCY,
        "requested_at": context.now,
    }
    if params.get("dossier_code"):
        result["dossier_code"] = str(params["dossier_code"])
    return result


def _fee_lines(params: dict[str, Any], operator: str) -> tuple[list[dict[str, Any]], Decimal]:
    """Return the lines to pay from parameter ``fees`` and their total, checked against ``amount``."""
    fees = params["fees"]
    if not isinstance(fees, list):
        raise HandlerError(f"{operator}: parameter 'fees' must be a list of fee lines", operator=operator)
    try:
        lines, total = payment_lines(fees)
    except ValidationError as exc:
        raise HandlerError(f"{operator}: {exc.message}", operator=operator) from exc
    if total <= 0:
        raise HandlerError(f"{operator}: the fee lines add up to 0 {CURRENCY}", operator=operator)
    if params.get("amount") is not None and _amount(params, operator) != total:
        raise HandlerError(
            f"{operator}: parameter 'amount' ({params['amount']}) is not the fee lines' total ({total})",
            operator=operator,
        )
    return lines, total


def delivery_online(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
    """Release the electronic result to the applicant (level 4, online delivery).

    The result document itself was stored with its SHA-256 when the leader approved (dossiers/delivery.py);
    the process then waits for ``result.collected``, the applicant's first download through a signed link.

    Returns:
        ``{"released_at", "channel": "online"}`` and ``dossier_code`` when given.
    """
    result: dict[str, Any] = {"released_at": context.now, "channel": "online"}
    if params.get("dossier_code"):
        result["dossier_code"] = str(params["dossier_code"])
    return result


def delivery_post(params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
    """Address the result for public post (level 4); the postal order itself, with its tracking number, is
    registered in the same transaction when the process starts waiting for ``post.delivered``
    (``dossiers/delivery.py``), so a retried task never registers a second one.

    Params:
        address: where the result goes (required).
        recipient: the addressee (required).
        phone: optional, the addressee's phone.
        dossier_code: optional, echoed back.

    Returns:
        ``{"recipient", "address", "phone", "requested_at"}`` plus ``dossier_code`` when given.

    Raises:
        HandlerError: ``address`` or ``recipient`` is missing or blank (not retryable).
    """
    address = _text(params, "address", "delivery.post")
    result: dict[str, Any] = {
        "recipient": _text(params, "recipient", "delivery.post"),
        "address": address,
        "phone": str(params["phone"]).strip() if params.get("phone") else None,
        "requested_at": context.now,
    }
    if params.get("dossier_code"):
        result["dossier_code"] = str(params["dossier_code"])
    return result


HANDLERS = {
    "forms.prefill": forms_prefill,
    "payment.request": payment_request,
    "delivery.online": delivery_online,
    "delivery.post": delivery_post,
}
