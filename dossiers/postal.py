"""Public post (VNPost) for results: tracking numbers and the states a postal order goes through.

Pure code.  A tracking number follows the UPU S10 shape the post prints on its labels: two service letters,
an 8-digit serial, a check digit and the country, e.g. ``EB000000014VN``.
"""

from __future__ import annotations

from engine.errors import ConflictError, ValidationError

SERVICE = "EB"
COUNTRY = "VN"
_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)

REGISTERED, COLLECTING, DELIVERED, CANCELLED = "registered", "collecting", "delivered", "cancelled"
STATUSES = (REGISTERED, COLLECTING, DELIVERED, CANCELLED)
REPORTED = (COLLECTING, DELIVERED, CANCELLED)  # what the post may report
# Which state may follow which; delivered and cancelled are final.
TRANSITIONS = {
    REGISTERED: frozenset({COLLECTING, CANCELLED}),
    COLLECTING: frozenset({DELIVERED, CANCELLED}),
}


def check_digit(serial: int) -> int:
    """Return the S10 check digit of an 8-digit serial number."""
    digits = f"{serial:08d}"
    remainder = 11 - sum(int(d) * w for d, w in zip(digits, _WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(remainder, remainder)


def tracking_number(serial: int) -> str:
    """Return the tracking number of ``serial`` (modulo 10^8): serial 1 gives ``EB000000014VN``."""
    serial %= 10**8
    return f"{SERVICE}{serial:08d}{check_digit(serial)}{COUNTRY}"


def is_tracking_number(text: str) -> bool:
    """Return whether ``text`` is a well-formed tracking number of ours (right shape and check digit)."""
    core = text[len(SERVICE) : -len(COUNTRY)]
    return (
        len(text) == 13
        and text.startswith(SERVICE)
        and text.endswith(COUNTRY)
        and core.isdigit()
        and check_digit(int(core[:8])) == int(core[8])
    )


def check_transition(tracking: str, current: str, reported: str) -> None:
    """Refuse a reported state that may not follow the order's current one.

    Raises:
        ValidationError: ``reported`` is not a state the post reports.
        ConflictError: the order cannot go from ``current`` to ``reported``.
    """
    if reported not in REPORTED:
        raise ValidationError(
            f"A postal event is one of {', '.join(REPORTED)}", {"status": [f"must be one of {REPORTED}"]}
        )
    if reported not in TRANSITIONS.get(current, frozenset()):
        raise ConflictError(
            f"Postal order {tracking} is {current}; it cannot become {reported}",
            tracking_number=tracking,
            current_status=current,
        )
