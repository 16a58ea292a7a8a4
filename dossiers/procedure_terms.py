"""What a procedure's record means for one dossier: its fees, its processing time and its Decree 42 class.

Fee ``tiers`` (``[{"from_unit": 3, "amount": 1000}]``) price the 3rd and later page or copy differently;
``max_amount`` caps one copy of a ``per_page`` line and the whole of any other line.  A fee ``amount`` of null
is fixed locally (e.g. by the provincial People's Council) and computes to None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from engine.errors import NotFoundError, ValidationError

TOAN_TRINH = "toan_trinh"
MOT_PHAN = "mot_phan"


def decree_42_class(procedure: Mapping[str, Any]) -> str:
    """Return the Decree 42/2022/ND-CP class: ``"toan_trinh"`` (full-process online) or ``"mot_phan"``.

    Full-process means level 4, the result can come back online or by post, and neither the procedure nor any
    of its components requires attending in person (``in_person_required``).
    """
    delivery = set(procedure.get("delivery_methods") or ())
    in_person = bool(procedure.get("in_person_required")) or any(
        component.get("in_person_required") for component in procedure.get("components") or ()
    )
    if procedure.get("level") == 4 and delivery & {"online", "post"} and not in_person:
        return TOAN_TRINH
    return MOT_PHAN


def _find_case(procedure: Mapping[str, Any], case: str) -> Mapping[str, Any]:
    for entry in procedure.get("cases") or ():
        if case in (entry.get("code"), entry.get("name")):
            return entry
    code = procedure.get("code")
    raise NotFoundError(f"Procedure {code} has no case '{case}'", procedure=code, case=case)


def processing_time(
    procedure: Mapping[str, Any], channel: str = "online", case: str | None = None
) -> tuple[float, str]:
    """Return ``(amount, unit)`` of the processing time for a channel, or for a case (by code or name).

    A case with its own time overrides the channel's; a case without one keeps the channel's.

    Raises:
        NotFoundError: the procedure has no such channel or case.
    """
    found = next((c for c in procedure.get("channels") or () if c.get("kind") == channel), None)
    if found is None:
        code = procedure.get("code")
        raise NotFoundError(f"Procedure {code} has no '{channel}' channel", procedure=code, channel=channel)
    if case is not None:
        chosen = _find_case(procedure, case)
        if chosen.get("processing_time") is not None:
            return float(chosen["processing_time"]), str(chosen["unit"])
    return float(found["processing_time"]), str(found["unit"])


def _tiered(rate: Decimal, tiers: Iterable[Mapping[str, Any]], count: int) -> Decimal:
    """Price ``count`` units where unit ``n`` costs the last tier starting at or before ``n``."""
    bounds = [(1, rate)] + [(int(tier["from_unit"]), Decimal(str(tier["amount"]))) for tier in tiers]
    total = Decimal(0)
    for index, (start, price) in enumerate(bounds):
        end = bounds[index + 1][0] - 1 if index + 1 < len(bounds) else count
        total += price * max(0, min(end, count) - start + 1)
    return total


def _line_amount(fee: Mapping[str, Any], pages: int, copies: int) -> Decimal | None:
    if fee.get("mode") in ("exempt", "none"):
        return Decimal(0)
    if fee.get("amount") is None:
        return None
    rate = Decimal(str(fee["amount"]))
    cap = None if fee.get("max_amount") is None else Decimal(str(fee["max_amount"]))
    tiers = fee.get("tiers") or ()
    if fee.get("unit") == "per_page":
        per_copy = _tiered(rate, tiers, pages)
        return (per_copy if cap is None else min(per_copy, cap)) * copies
    total = _tiered(rate, tiers, copies) if fee.get("unit") == "per_copy" else rate
    return total if cap is None else min(total, cap)


def compute_fees(
    procedure: Mapping[str, Any], *, pages: int = 1, copies: int = 1, case: str | None = None
) -> list[dict[str, Any]]:
    """Price the procedure's fee lines (or the case's own lines) for ``pages`` pages and ``copies`` copies.

    Each returned line has ``code``, ``description``, ``mode``, ``unit``, ``rate`` (the file's amount) and the
    computed ``amount``: a Decimal, 0 for exempt/none lines, or None for a locally fixed amount.  Example: a
    certified copy of 5 pages, 1 copy: 2 x 2,000 + 3 x 1,000 = 7,000 VND.

    Raises:
        ValidationError: ``pages`` or ``copies`` is not a positive integer.
        NotFoundError: the procedure has no such case.
    """
    for name, value in (("pages", pages), ("copies", copies)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"{name} must be a positive integer", {name: ["Must be at least 1."]})
    lines = procedure.get("fees") or []
    if case is not None:
        chosen = _find_case(procedure, case)
        if chosen.get("fees") is not None:
            lines = chosen["fees"]
    keep = ("code", "description", "mode", "unit")
    return [
        {
            **{key: line.get(key) for key in keep},
            "rate": line.get("amount"),
            "amount": _line_amount(line, pages, copies),
        }
        for line in lines
    ]
