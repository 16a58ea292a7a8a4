"""The modules sandboxed code may import (read-only, allowlisted proxies with size-checked overrides) and
the checks on what a run may keep as task data (:func:`storable`, :func:`data_problem`).
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn

from .sandbox_core import refuse
from .sandbox_limits import check_bits, check_decimal, check_size

DEFAULT_ALLOWED_MODULES: Mapping[str, frozenset[str]] = types.MappingProxyType(
    {
        "math": frozenset(name for name in dir(math) if not name.startswith("_")),
        "datetime": frozenset({"date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR"}),
        "decimal": frozenset(
            {"Decimal", "DecimalException", "InvalidOperation", "DivisionByZero", "Overflow"}
            | {f"ROUND_{mode}" for mode in ("UP", "DOWN", "CEILING", "FLOOR", "05UP")}
            | {f"ROUND_HALF_{mode}" for mode in ("UP", "DOWN", "EVEN")}
        ),
        "json": frozenset({"dumps", "loads", "JSONDecodeError"}),
    }
)
MAX_DATA_SIZE = 1_000_000  # data nodes, plus one per 32 characters of text


class ModuleProxy:
    """A read-only view of an allowed module: only its allowlisted attributes can be read."""

    __slots__ = ("_attrs", "_name")

    def __init__(self, name: str, attrs: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_attrs", dict(attrs))

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        try:
            return self._attrs[attr]
        except KeyError:
            pass
        refuse(f"'{self._name}.{attr}' is not allowed")

    def __setattr__(self, attr: str, value: Any) -> NoReturn:
        refuse(f"Module '{self._name}' is read-only")

    def __delattr__(self, attr: str) -> NoReturn:
        refuse(f"Module '{self._name}' is read-only")

    def __dir__(self) -> list[str]:
        return sorted(self._attrs)

    def __repr__(self) -> str:
        return f"<module '{self._name}' (sandboxed)>"


def _bounded(func: Callable[..., Any], bits: Callable[..., int]) -> Callable[..., Any]:
    """Wrap an integer ``math`` function: refuse when ``bits(*args)`` estimates too large a result."""

    def call(*args: Any) -> Any:
        if all(isinstance(arg, int) for arg in args):
            check_bits(bits(*args))
        return func(*args)

    return call


def _decimal_checked(func: Callable[[Any], int]) -> Callable[[Any], int]:
    def call(x: Any) -> int:
        return func(check_decimal(x))

    return call


def _prod(iterable: Iterable[Any], /, *, start: Any = 1) -> Any:
    values = list(iterable)
    check_bits(sum(value.bit_length() for value in [start, *values] if isinstance(value, int)))
    return math.prod(values, start=start)


def _json_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    indent, separators = kwargs.get("indent"), kwargs.get("separators") or ()
    if "cls" in kwargs:
        refuse("json: the 'cls' option is not allowed")
    if len(str(indent or "")) > 8 or (isinstance(indent, int) and indent > 16):
        refuse("json.dumps(): indent is too large")
    if any(len(str(separator)) > 8 for separator in separators):
        refuse("json.dumps(): separators are too long")
    return kwargs


_MODULE_OVERRIDES: dict[tuple[str, str], Callable[..., Any]] = {
    ("math", "factorial"): _bounded(math.factorial, lambda n: n * n.bit_length()),
    ("math", "comb"): _bounded(math.comb, lambda n, k: n),
    ("math", "perm"): _bounded(math.perm, lambda n, k=None: max(n if k is None else k, 0) * n.bit_length()),
    ("math", "lcm"): _bounded(math.lcm, lambda *numbers: sum(n.bit_length() for n in numbers)),
    ("math", "prod"): _prod,
    ("math", "floor"): _decimal_checked(math.floor),
    ("math", "ceil"): _decimal_checked(math.ceil),
    ("math", "trunc"): _decimal_checked(math.trunc),
    ("json", "dumps"): lambda obj, **kw: check_size(json.dumps(obj, **_json_options(kw))),
    ("json", "loads"): lambda text, **kw: json.loads(text, **_json_options(kw)),
}


def build_modules(allowed: Mapping[str, frozenset[str]]) -> dict[str, ModuleProxy]:
    """Return a read-only proxy per allowed module, exposing only the listed public attributes."""
    proxies = {}
    for name, attrs in allowed.items():
        module = importlib.import_module(name)
        public = sorted(attr for attr in attrs if not attr.startswith("_"))
        proxies[name] = ModuleProxy(
            name, {attr: _MODULE_OVERRIDES.get((name, attr)) or getattr(module, attr) for attr in public}
        )
    return proxies


_ATOMS = frozenset({int, float, bool, type(None), Decimal, date, datetime, timedelta, complex})


def storable(value: Any) -> bool:
    """Whether ``value`` may be kept as task data (not a function, class, module or iterator)."""
    if type(value) in _ATOMS:
        return True
    return not (callable(value) or isinstance(value, (ModuleProxy, types.ModuleType, Iterator)))


class _DataSize:
    """Measures data as a serialiser would see it: shared parts count each time they appear."""

    def __init__(self) -> None:
        self.memo: dict[int, int] = {}
        self.active: set[int] = set()

    def of(self, value: Any) -> int:
        """Return the size of ``value``; TypeError names an unstorable type, OverflowError means too big."""
        if type(value) in _ATOMS:
            return 1
        if isinstance(value, (str, bytes)):
            return 1 + len(value) // 32
        if not isinstance(value, (dict, list, tuple, set, frozenset)):
            if not storable(value):
                raise TypeError(type(value).__name__)
            return 1
        key = id(value)
        if key in self.memo:
            return self.memo[key]
        if key in self.active or len(value) > MAX_DATA_SIZE:
            raise OverflowError  # refers to itself, or too long
        self.active.add(key)
        total = 1
        for child in itertools.chain.from_iterable(value.items()) if isinstance(value, dict) else value:
            kind = type(child)
            total += 1 if kind in _ATOMS else 1 + len(child) // 32 if kind is str else self.of(child)
            if total > MAX_DATA_SIZE:
                raise OverflowError
        self.active.discard(key)
        self.memo[key] = total
        return total


def data_problem(values: Mapping[str, Any]) -> tuple[bool, str] | None:
    """Return (is_violation, reason) when ``values`` cannot be kept as task data, else None.

    Nested functions or modules are ordinary errors; data too large, too deep or self-referencing (as a
    serialiser would see it: shared parts count each time they appear) is a violation.
    """
    sizer, total = _DataSize(), 0
    for name, value in values.items():
        try:
            total += sizer.of(value)
        except TypeError as exc:
            return False, f"'{name}' holds a {exc}, which task data cannot keep"
        except (OverflowError, RecursionError):
            total = MAX_DATA_SIZE + 1
        if total > MAX_DATA_SIZE:
            return True, "Its variables are too large, too deep or refer to themselves"
    return None
