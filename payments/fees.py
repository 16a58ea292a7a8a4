"""What a dossier owes online: its priced fee lines, plus postage when the result goes back by post.

Pure functions, shared by the BPMN handler that requests the payment (``handlers/dossier_ops.py``) and the
payment service, so that the amount the process asks for and the amount the citizen pays are one number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import ValidationError

CURRENCY = "VND"
# The postage of a result sent back by public post, when the settings do not say otherwise.
DEFAULT_POSTAGE_VND = 30000
POSTAGE_CODE = "BUU_CHINH"
POSTAGE_TEXT = "Cước dịch vụ bưu chính công ích chuyển trả kết quả"


def whole_dong(value: Any, field: str = "amount") -> Decimal:
    """Return ``value`` (Decimal, int or numeric text) as a non-negative whole number of dong.

    Raises:
        ValidationError: not a number, negative, or a fraction of a dong (naming ``field``).
    """
    if isinstance(value, bool) or value is None:
        raise ValidationError(f"'{field}' must be an amount of {CURRENCY}", {field: ["not an amount"]})
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError(
            f"'{field}' must be an amount of {CURRENCY}", {field: ["not an amount"]}
        ) from None
    if not amount.is_finite() or amount < 0 or amount != amount.to_integral_value():
        raise ValidationError(
            f"'{field}' must be a whole, non-negative number of {CURRENCY}", {field: ["not whole dong"]}
        )
    return amount.quantize(Decimal(1))


def postage_for(delivery_method: str | None, postage_vnd: int | Decimal) -> Decimal:
    """Return the postage a dossier pays online: ``postage_vnd`` when the result goes by post, else 0."""
    return whole_dong(postage_vnd, "postage") if delivery_method == "post" else Decimal(0)


def payment_lines(
    fees: Iterable[Mapping[str, Any]] | None, postage: Any = 0
) -> tuple[list[dict[str, Any]], Decimal]:
    """Return the lines to pay and their total: every fee line with an amount above 0, then the postage.

    Lines whose amount is fixed locally (None) or is 0 (exempt) are not paid online.

    Args:
        fees: the dossier's priced fee lines (``code``, ``description``, ``amount``) from the process.
        postage: the postage to add (0 or None: none).

    Returns:
        ``([{"code", "description", "amount"}...], total)``, amounts as Decimal whole dong.

    Raises:
        ValidationError: an amount is not a whole, non-negative number of dong.
    """
    lines: list[dict[str, Any]] = []
    total = Decimal(0)
    for index, fee in enumerate(fees or ()):
        if not isinstance(fee, Mapping) or fee.get("amount") is None:
            continue
        amount = whole_dong(fee["amount"], f"fees[{index}].amount")
        if amount > 0:
            description = str(fee.get("description") or fee.get("code") or "Phí, lệ phí")
            lines.append({"code": fee.get("code"), "description": description, "amount": amount})
            total += amount
    extra = whole_dong(postage or 0, "postage")
    if extra > 0:
        lines.append({"code": POSTAGE_CODE, "description": POSTAGE_TEXT, "amount": extra})
        total += extra
    return lines, total
