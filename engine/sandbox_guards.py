"""The guards sandboxed code calls: ``str``/``bytes`` method wrappers, attribute access and item writes,
and the replacement builtins (``range``, ``int``, ``sum``, ``round``, ``iter``, ``print``...).
"""

from __future__ import annotations

import _string
import contextlib
import functools
import operator
import string
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn

from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from .sandbox_core import CURRENT_RUN, T, refuse, short_text
from .sandbox_limits import (
    _SEQUENCES,
    MAX_ITEMS,
    MAX_RANGE,
    MAX_ROUND_DIGITS,
    check_decimal,
    check_items,
    check_size,
    checked_extend,
    format_spec_problem,
)


# ------------------------------------------------------------------------------------- text method guards
class _SafeFormatter(string.Formatter):
    """``str.format`` whose fields go through the attribute guard and whose widths are bounded."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = guarded_getattr(obj, key) if is_attr else obj[key]
        return obj, first

    def format_field(self, value: Any, format_spec: str) -> Any:
        problem = format_spec_problem(format_spec)
        if problem:
            refuse(problem)
        return check_size(format(check_decimal(value), format_spec))


_FORMATTER = _SafeFormatter()


def safe_format(template: str, /, *args: Any, **kwargs: Any) -> str:
    """``template.format(*args, **kwargs)`` without attribute walking or oversized widths."""
    return check_size(_FORMATTER.vformat(str(template), args, kwargs))


def safe_format_map(template: str, mapping: Mapping[str, Any]) -> str:
    """``template.format_map(mapping)`` under the rules of :func:`safe_format`."""
    return check_size(_FORMATTER.vformat(str(template), (), mapping))


def safe_join(sep: Any, items: Iterable[Any]) -> Any:
    """``sep.join(items)``, refusing results longer than ``MAX_ITEMS``."""
    parts = items if isinstance(items, (list, tuple)) else list(items)
    with contextlib.suppress(TypeError):  # join itself reports a bad item
        check_items(sum(map(len, parts)) + len(sep) * max(len(parts) - 1, 0))
    return sep.join(parts)


def safe_replace(text: Any, old: Any, new: Any, count: int = -1) -> Any:
    """``text.replace(old, new, count)``, refusing results longer than ``MAX_ITEMS``."""
    if len(new) > len(old):
        hits = text.count(old) if old else len(text) + 1
        check_items(len(text) + (hits if count < 0 else min(hits, count)) * (len(new) - len(old)))
    return text.replace(old, new, count)


def safe_translate(text: Any, table: Any) -> Any:
    """``text.translate(table)``; a str table must be a dict, and the result is size-checked."""
    if isinstance(text, str):
        if not isinstance(table, dict):
            refuse("str.translate() needs a dict made by str.maketrans()")
        check_items(len(text) * max((len(v) for v in table.values() if isinstance(v, str)), default=1))
    return text.translate(table)


def safe_expandtabs(text: Any, tabsize: int = 8) -> Any:
    """``text.expandtabs(tabsize)``, refusing results longer than ``MAX_ITEMS``."""
    check_items(len(text) + text.count("\t" if isinstance(text, str) else b"\t") * max(tabsize, 0))
    return text.expandtabs(tabsize)


def _width_checked(name: str) -> Callable[..., Any]:
    def call(obj: Any, *args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and value > MAX_ITEMS:
                refuse(f"{name}() size {value} is too large (the limit is {MAX_ITEMS:,})")
        return getattr(obj, name)(*args, **kwargs)

    return call


_TEXT_METHODS: dict[str, Callable[..., Any]] = {
    "format": safe_format, "format_map": safe_format_map, "join": safe_join, "replace": safe_replace,
    "translate": safe_translate, "expandtabs": safe_expandtabs,
    **{name: _width_checked(name) for name in ("ljust", "rjust", "center", "zfill")},
}  # fmt: skip
_SIZED_METHODS: dict[str, tuple[type, Callable[..., Any]]] = {
    "extend": (list, checked_extend),
    "to_bytes": (int, _width_checked("to_bytes")),
}


def _result_checked(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return check_size(method(*args, **kwargs))

    return call


def _text_attr(obj: Any, name: str, default: tuple[Any, ...]) -> Any:
    value = getattr(obj, name, *default)
    if not callable(value):
        return value
    wrapper = _TEXT_METHODS.get(name)
    if wrapper is None:
        return _result_checked(value)
    return _result_checked(wrapper) if isinstance(obj, type) else functools.partial(wrapper, obj)


# ------------------------------------------------------------------------------------ attributes and writes
FORBIDDEN_ATTRIBUTES = INSPECT_ATTRIBUTES | frozenset(
    {"mro", "func_globals", "func_code", "func_closure", "im_func", "im_self", "im_class", "cell_contents"}
)
_OPAQUE_TYPES = frozenset({
    types.BuiltinFunctionType, types.FunctionType, types.MethodType, types.CodeType, types.FrameType,
    types.TracebackType, types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType,
    types.ModuleType, types.CellType, types.MethodDescriptorType, types.WrapperDescriptorType,
    types.MethodWrapperType, types.ClassMethodDescriptorType, types.GetSetDescriptorType,
    types.MemberDescriptorType, functools.partial, operator.attrgetter, operator.itemgetter,
    operator.methodcaller, staticmethod, classmethod, property,
})  # fmt: skip


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """The ``_getattr_`` guard (and the ``getattr`` builtin) of sandboxed code.

    Refuses names starting with ``_`` and frame/code/generator internals, every attribute of functions,
    code, frames, generators and descriptors, and swaps ``str`` methods that could walk attributes
    (``format``) or build huge strings for checked versions.

    Raises:
        SandboxViolation: the attribute is off limits.
    """
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in FORBIDDEN_ATTRIBUTES:
        refuse(f"Access to attribute '{name}' is not allowed")
    if type(obj) in _OPAQUE_TYPES:
        refuse(f"Attributes of {type(obj).__name__} objects are not accessible")
    if isinstance(obj, (str, bytes)) or obj is str or obj is bytes:
        return _text_attr(obj, name, default)
    sized = _SIZED_METHODS.get(name)
    if sized is not None and (
        isinstance(obj, sized[0]) or (isinstance(obj, type) and issubclass(obj, sized[0]))
    ):
        return sized[1] if isinstance(obj, type) else functools.partial(sized[1], obj)
    if name == "as_integer_ratio":
        check_decimal(obj)
    return getattr(obj, name, *default)


class _ItemWriter:
    """Lets code set and delete items of a list or dict subclass, never its attributes."""

    __slots__ = ("_target",)
    _target: Any

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, slice) and isinstance(self._target, list):
            value = value if isinstance(value, (list, tuple, str)) else list(value)
            check_items(len(self._target) + len(value))
        self._target[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._target[key]

    def __setattr__(self, name: str, value: Any) -> None:
        refuse(f"Setting attribute '{name}' is not allowed")

    def __delattr__(self, name: str) -> None:
        refuse(f"Deleting attribute '{name}' is not allowed")


def guarded_write(obj: Any) -> Any:
    """The ``_write_`` guard: item writes on dicts and lists only.

    Raises:
        SandboxViolation: ``obj`` is anything else (a module, a class, a date...).
    """
    if type(obj) is dict:
        return obj
    if isinstance(obj, (dict, list)):
        return _ItemWriter(obj)
    refuse(f"Changing a {type(obj).__name__} object is not allowed")


# ----------------------------------------------------------------------------------------------- builtins
def limited_range(*args: int) -> range:
    """``range`` of at most ``MAX_RANGE`` numbers."""
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:
        size = MAX_RANGE + 1
    if size > MAX_RANGE:
        refuse(f"range() of {size:,} numbers is too large (the limit is {MAX_RANGE:,})")
    return numbers


class _IntType(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, int)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, int)


class SafeInt(int, metaclass=_IntType):
    """``int`` for sandboxed code: refuses converting Decimals with huge exponents; ``isinstance`` works."""

    def __new__(cls, value: Any = 0, *args: Any, **kwargs: Any) -> int:  # type: ignore[misc]
        return int(check_decimal(value), *args, **kwargs)


SafeInt.__name__, SafeInt.__qualname__, SafeInt.__module__ = "int", "int", "builtins"


def safe_sum(iterable: Iterable[Any], /, start: Any = 0) -> Any:
    """``sum`` of numbers (or durations); refuses adding up sequences, which is quadratic in C."""
    if isinstance(start, (*_SEQUENCES, dict, set)):
        refuse("sum() only adds numbers; use ''.join() or a loop instead")
    return sum(iterable, start)


def safe_round(number: Any, ndigits: Any = None) -> Any:
    """``round``, refusing ``ndigits`` so large that rounding an integer would take minutes."""
    if ndigits is None:
        return round(check_decimal(number))
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        refuse(f"round() to {ndigits} digits is not allowed")
    return round(number, ndigits)


def safe_iter(obj: Any, *sentinel: Any) -> Iterator[Any]:
    """``iter``, with the deadline checked at every step (``iter(f, stop)`` can run forever)."""
    it = iter(obj, *sentinel)
    state = CURRENT_RUN.get()
    return state.getiter(it) if state is not None else it


def guarded_apply(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The ``_apply_`` hook for calls with ``*args``/``**kwargs``."""
    return func(*args, **kwargs)


def forbidden(name: str) -> Callable[..., NoReturn]:
    """Return a stand-in for a builtin that sandboxed code may not use."""

    def call(*args: Any, **kwargs: Any) -> NoReturn:
        refuse(f"'{name}' is not allowed in scripts")

    call.__name__ = call.__qualname__ = name
    return call


FORBIDDEN_BUILTINS = (
    "open", "eval", "exec", "compile", "globals", "locals", "vars", "type", "object", "super",
    "breakpoint", "input", "help", "memoryview", "dir", "exit", "quit", "setattr", "delattr",
    "classmethod", "staticmethod", "property", "bytearray",
)  # fmt: skip


class PrintCollector:
    """Keeps what a script prints (at most 64 KiB) for the ``printed`` name; nothing reaches stdout."""

    limit = 65_536

    def __init__(self, _getattr_: Any = None) -> None:
        self.parts: list[str] = []
        self.size = 0

    def _call_print(self, *objects: Any, sep: Any = " ", end: Any = "\n", file: Any = None, **_: Any) -> None:
        if file is not None:
            refuse("print(file=...) is not allowed")
        sep, end = " " if sep is None else str(sep), "\n" if end is None else str(end)
        if len(sep) + len(end) > 100:
            refuse("print() separators are too long")
        if self.size < self.limit:
            text = (sep.join(map(short_text, objects)) + end)[: self.limit - self.size]
            self.parts.append(text)
            self.size += len(text)

    def __call__(self) -> str:
        return "".join(self.parts)
