"""The rules sandboxed code runs under: the restricting compiler, the guards it calls and resource checks.

``engine.sandbox`` assembles these into an environment.  Every refusal goes through :func:`refuse`, which
raises ``SandboxViolation`` and records the first refusal of the current run, so that a script cannot hide
a rule break by catching the exception.

Bounded: wall time (a deadline checked in every loop, function call and comprehension step); integer
sizes (``**``, ``*``, ``<<``, ``pow``, ``round``, ``int(Decimal)``); sequence sizes (``*``, ``+``,
%-formatting, f-strings, ``str`` methods, ``list.extend``, slice assignment, ``range``).
"""

from __future__ import annotations

import _string
import ast
import builtins
import contextlib
import contextvars
import functools
import importlib
import itertools
import json
import math
import operator
import re
import reprlib
import string
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NamedTuple, NoReturn, TypeVar, cast

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, limited_builtins, safe_builtins
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer, copy_locations

from .errors import SandboxViolation

SCRIPT_FILENAME = "<script>"
MAX_ITEMS = 10_000_000  # longest str/bytes/list/tuple a script may build
MAX_INT_BITS = 100_000  # largest integer a script may build
MAX_EXPONENT = 10_000
MAX_RANGE = 100_000
MAX_FORMAT_WIDTH = 10_000
MAX_ROUND_DIGITS = 1_000
MAX_DECIMAL_EXPONENT = 30_000  # int(Decimal) takes time quadratic in the exponent

T = TypeVar("T")
_now = time.monotonic
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 4, 400, 200
_SEQUENCES = (str, bytes, list, tuple)


def short_text(value: Any) -> str:
    """``str(value)``, but containers abridged (a shared structure can be astronomically long as text)."""
    return _SHORT_REPR.repr(value) if isinstance(value, (list, tuple, dict, set, frozenset)) else str(value)


class RunState:
    """The deadline and the first rule break of one run of sandboxed code."""

    __slots__ = ("deadline", "limit", "line", "violation")

    def __init__(self, limit: float) -> None:
        self.limit, self.deadline = limit, _now() + limit
        self.violation: str | None = None
        self.line: int | None = None

    def tick(self) -> None:
        """Refuse to go on once the deadline has passed (called in every loop and function body)."""
        if _now() > self.deadline:
            refuse(f"Script exceeded its time limit of {self.limit:g} s")

    def getiter(self, ob: Iterable[T]) -> Iterator[T]:
        """Return an iterator over ``ob`` that checks the deadline at every step."""
        return self._ticking(iter(ob))

    def _ticking(self, it: Iterator[T]) -> Iterator[T]:
        deadline = self.deadline
        for item in it:
            if _now() > deadline:
                self.tick()
            yield item


CURRENT_RUN: contextvars.ContextVar[RunState | None] = contextvars.ContextVar("sandbox_run", default=None)


def _script_line() -> int | None:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == SCRIPT_FILENAME:
            return frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


def refuse(message: str) -> NoReturn:
    """Record ``message`` as the current run's rule break (if it is the first) and raise it.

    Raises:
        SandboxViolation: always.
    """
    state = CURRENT_RUN.get()
    if state is not None and state.violation is None:
        state.violation, state.line = message, _script_line()
    raise SandboxViolation(message)


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


# ------------------------------------------------------------------------------------------------ compiler
_CHECKED_OPERATORS: dict[type[ast.operator], str] = {
    ast.Pow: "_pow_", ast.Mult: "_mul_", ast.Add: "_add_", ast.LShift: "_lshift_", ast.Mod: "_mod_"
}  # fmt: skip
OPERATOR_GUARDS: dict[str, Callable[..., Any]] = {
    "_pow_": checked_pow, "_mul_": checked_mul, "_add_": checked_add, "_lshift_": checked_lshift,
    "_mod_": checked_mod, "_fstr_": check_size, "_fmtval_": check_decimal,
}  # fmt: skip


def _call(name: str, args: list[ast.expr], where: ast.expr | ast.stmt) -> ast.Call:
    node = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    copy_locations(node, where)
    return node


def _with_tick(node: ast.While | ast.For | ast.FunctionDef) -> ast.AST:
    tick = ast.Expr(_call("_tick_", [], node))
    copy_locations(tick, node)
    node.body.insert(0, tick)
    return node


class SandboxTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus deadline checks, checked operators and no classes."""

    def visit_While(self, node: ast.While) -> ast.AST:
        return _with_tick(cast(ast.While, super().visit_While(node)))

    def visit_For(self, node: ast.For) -> ast.AST:
        return _with_tick(cast(ast.For, super().visit_For(node)))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return _with_tick(cast(ast.FunctionDef, super().visit_FunctionDef(node)))

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        node = cast(ast.Lambda, super().visit_Lambda(node))
        body = ast.BoolOp(op=ast.Or(), values=[_call("_tick_", [], node.body), node.body])
        copy_locations(body, node.body)
        node.body = body
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.error(node, "Class definitions are not allowed.")
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.node_contents_visit(node)
        guard = _CHECKED_OPERATORS.get(type(node.op))
        return node if guard is None else _call(guard, [node.left, node.right], node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        spec = node.format_spec
        for part in spec.values if isinstance(spec, ast.JoinedStr) else ():
            if not isinstance(part, ast.Constant):
                self.error(node, "Replacement fields inside f-string format specifications are not allowed.")
            elif problem := format_spec_problem(str(part.value)):
                self.error(node, problem)
        node = self.node_contents_visit(node)
        node.value = _call("_fmtval_", [node.value], node.value)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        node = self.node_contents_visit(node)
        if sum(isinstance(value, ast.FormattedValue) for value in node.values) < 2:
            return node
        return _call("_fstr_", [node], node)


class CompileOutcome(NamedTuple):
    """A compiled code object, or the problems that prevented it (``syntax_error`` tells which kind)."""

    code: Any
    errors: tuple[str, ...]
    syntax_error: bool


def compile_source(source: str, mode: Literal["exec", "eval"]) -> CompileOutcome:
    """Parse and compile ``source`` under :class:`SandboxTransformer`; never raises for bad code."""
    try:
        tree = cast(ast.Module | ast.Expression, ast.parse(source, SCRIPT_FILENAME, mode))
        compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
        result = compiler(tree, filename=SCRIPT_FILENAME, policy=SandboxTransformer)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None) or 1
        return CompileOutcome(None, (f"Line {line}: {type(exc).__name__}: {getattr(exc, 'msg', exc)}",), True)
    except (RecursionError, MemoryError):
        return CompileOutcome(None, ("Line 1: the code is nested too deeply",), True)
    return CompileOutcome(result.code, tuple(result.errors), False)


# ------------------------------------------------------------------------------- modules, hooks and data
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


def _importer(modules: Mapping[str, ModuleProxy]) -> Callable[..., ModuleProxy]:
    def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
                       ) -> ModuleProxy:  # fmt: skip
        module = modules.get(name) if level == 0 else None
        if module is None:
            refuse(f"Import of module '{name}' is not allowed")
        for attr in fromlist or ():
            if attr not in dir(module):
                refuse(f"Import of '{attr}' from module '{name}' is not allowed")
        return module

    return guarded_import


_EXTRA_BUILTINS = (
    "sorted", "min", "max", "any", "all", "enumerate", "zip", "map", "filter", "list", "dict", "set",
    "frozenset", "tuple", "reversed", "abs", "len", "isinstance", "str", "int", "float", "bool", "next",
)  # fmt: skip
_DROPPED_BUILTINS = (
    "__build_class__", "_getattr_", "setattr", "delattr", "BaseException", "SystemExit", "KeyboardInterrupt",
    "GeneratorExit",
)  # fmt: skip


def guard_globals(modules: Mapping[str, ModuleProxy]) -> dict[str, Any]:
    """Return the RestrictedPython hooks (``_getattr_``...) and the curated ``__builtins__``."""
    names: dict[str, Any] = {**safe_builtins, **limited_builtins}
    for name in _DROPPED_BUILTINS:
        names.pop(name, None)
    names.update({name: getattr(builtins, name) for name in _EXTRA_BUILTINS})
    names.update({name: forbidden(name) for name in FORBIDDEN_BUILTINS})
    names.update(range=limited_range, pow=checked_pow, sum=safe_sum, int=SafeInt)
    names.update(round=safe_round, iter=safe_iter, getattr=guarded_getattr)
    names["__import__"] = _importer(modules)
    return {
        "__builtins__": names, "_getattr_": guarded_getattr, "_getitem_": operator.getitem,
        "_write_": guarded_write, "_inplacevar_": inplacevar, "_apply_": guarded_apply,
        "_print_": PrintCollector, "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence, **OPERATOR_GUARDS,
    }  # fmt: skip


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
