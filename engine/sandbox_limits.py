"""Size limits and the size-checked operators that sandboxed code calls instead of ``**``, ``*``, ``+``...

Bounded here: integer sizes (``**``, ``*``, ``<<``, ``pow``, ``int(Decimal)``) and sequence sizes (``*``,
``+``, %-formatting, f-strings, ``list.extend``, in-place operators), plus format-specification widths.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from .sandbox_core import T, refuse

MAX_ITEMS = 10_000_000  # longest str/bytes/list/tuple a script may build
MAX_INT_BITS = 100_000  # largest integer a script may build
MAX_EXPONENT = 10_000
MAX_RANGE = 100_000
MAX_FORMAT_WIDTH = 10_000
MAX_ROUND_DIGITS = 1_000
MAX_DECIMAL_EXPONENT = 30_000  # int(Decimal) takes time quadratic in the exponent
_SEQUENCES = (str, bytes, list, tuple)


# -------------------------------------------------------------------------------- size-checked operations
def check_size(value: T) -> T:
    """Return ``value`` unless it is a sequence longer than ``MAX_ITEMS``."""
    if isinstance(value, _SEQUENCES) and len(value) > MAX_ITEMS:
        refuse(f"The result is too large ({len(value):,} items; the limit is {MAX_ITEMS:,})")
    return value


def check_items(count: int) -> None:
    """Refuse building a sequence of ``count`` items when that is over ``MAX_ITEMS``."""
    if count > MAX_ITEMS:
        refuse(f"The result would be too large (more than {MAX_ITEMS:,} items)")


def check_bits(bits: int) -> None:
    """Refuse building an integer of ``bits`` bits when that is over ``MAX_INT_BITS``."""
    if bits > MAX_INT_BITS:
        refuse(f"The result would be too large a number (more than {MAX_INT_BITS:,} bits)")


def check_decimal(value: T) -> T:
    """Return ``value`` unless it is a Decimal whose exponent makes ``int()`` or formatting explode."""
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) > MAX_DECIMAL_EXPONENT:
        refuse(f"Decimal {value} is too large or too small to convert (limit 1E{MAX_DECIMAL_EXPONENT})")
    return value


def checked_pow(base: Any, exp: Any, mod: Any = None) -> Any:
    """``base ** exp`` (or ``pow(base, exp, mod)``), refusing integer results that would be enormous."""
    if isinstance(base, int) and isinstance(exp, int):
        if isinstance(mod, int) and max(exp.bit_length(), mod.bit_length()) > 4096:
            refuse("pow() with a modulus: numbers over 4096 bits are not allowed")
        if mod is None and exp > 0 and abs(base) > 1:
            if exp > MAX_EXPONENT:
                refuse(f"Exponent {exp} is too large (the limit is {MAX_EXPONENT:,})")
            check_bits(base.bit_length() * exp)
    return base**exp if mod is None else pow(base, exp, mod)


def checked_mul(a: Any, b: Any) -> Any:
    """``a * b``, refusing huge integers and repeated sequences."""
    if isinstance(a, int) and isinstance(b, int):
        check_bits(a.bit_length() + b.bit_length())
    elif isinstance(a, _SEQUENCES) and isinstance(b, int):
        check_items(len(a) * b)
    elif isinstance(b, _SEQUENCES) and isinstance(a, int):
        check_items(len(b) * a)
    return a * b


def checked_add(a: Any, b: Any) -> Any:
    """``a + b``, refusing sequences longer than ``MAX_ITEMS``."""
    return check_size(a + b)


def checked_lshift(a: Any, b: Any) -> Any:
    """``a << b``, refusing huge integers."""
    if isinstance(a, int) and isinstance(b, int) and a and b > 0:
        check_bits(a.bit_length() + b)
    return a << b


_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def checked_mod(a: Any, b: Any) -> Any:
    """``a % b``; %-formatting may not use ``*`` or widths adding up to too much text, nor huge Decimals."""
    if not isinstance(a, (str, bytes)):
        return a % b
    for arg in b.values() if isinstance(b, Mapping) else b if isinstance(b, tuple) else (b,):
        check_decimal(arg)
    total = 0
    for width, precision in _PRINTF.findall(a if isinstance(a, str) else a.decode("latin-1")):
        if "*" in (width, precision) or len(width) > 7 or len(precision) > 7:
            refuse(f"%-format width or precision '{width}.{precision}' is not allowed")
        total += int(width or 0) + int(precision or 0)
    check_items(total)
    return check_size(a % b)


def checked_extend(target: list[Any], items: Iterable[Any]) -> None:
    """``target.extend(items)``, refusing lists longer than ``MAX_ITEMS``."""
    extra = items if isinstance(items, (list, tuple, str, dict, set, frozenset)) else list(items)
    check_items(len(target) + len(extra))
    target.extend(extra)


def _checked_iadd(a: Any, b: Any) -> Any:
    if isinstance(a, list):
        checked_extend(a, b)
        return a
    return checked_add(a, b)


def _checked_imul(a: Any, b: Any) -> Any:
    if isinstance(a, list) and isinstance(b, int):
        check_items(len(a) * b)
        a *= b
        return a
    return checked_mul(a, b)


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": _checked_iadd, "-=": operator.isub, "*=": _checked_imul, "/=": operator.itruediv,
    "%=": checked_mod, "**=": checked_pow, "<<=": checked_lshift, ">>=": operator.irshift,
    "|=": operator.ior, "^=": operator.ixor, "&=": operator.iand, "//=": operator.ifloordiv,
    "@=": operator.imatmul,
}  # fmt: skip


def inplacevar(op: str, target: Any, value: Any) -> Any:
    """The ``_inplacevar_`` hook: ``x op= y`` with the size checks of the plain operators."""
    return _INPLACE[op](target, value)


def format_spec_problem(spec: str) -> str | None:
    """Return why a format specification is refused (a width or precision over the limit), or None."""
    for digits in re.findall(r"\d+", spec):
        if len(digits) > 6 or int(digits) > MAX_FORMAT_WIDTH:
            return f"Format width {digits} is too large (the limit is {MAX_FORMAT_WIDTH:,})"
    return None
