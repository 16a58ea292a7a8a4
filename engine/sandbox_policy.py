"""The rules sandboxed code runs under: the restricting compiler, the guards it calls and resource checks.

``engine.sandbox`` assembles these into an environment.  Everything here refuses by raising
``SandboxViolation`` through :func:`refuse`, which also records the first refusal of the current run so
that a script cannot hide a rule break by catching the exception.

What is bounded: wall time (a deadline checked in every loop, function call and comprehension step), big
integers (``**``, ``*``, ``<<``, ``pow``, ``round``, ``math.factorial``...), sequence sizes (``*``, ``+``,
%-formatting, f-strings, ``str`` methods, ``list.extend``, slice assignment, ``range``).
"""

from __future__ import annotations

import _string
import ast
import contextlib
import contextvars
import functools
import operator
import re
import reprlib
import string
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Literal, NamedTuple, NoReturn, TypeVar, cast

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer, copy_locations

from .errors import SandboxViolation

SCRIPT_FILENAME = "<script>"
MAX_ITEMS = 10_000_000  # longest str/bytes/list/tuple a script may build
MAX_INT_BITS = 100_000  # largest integer a script may build
MAX_EXPONENT = 10_000
MAX_RANGE = 100_000
MAX_FORMAT_WIDTH = 10_000
MAX_ROUND_DIGITS = 1_000
MAX_DECIMAL_EXPONENT = 30_000  # int(Decimal) is quadratic in the exponent

T = TypeVar("T")
_now = time.monotonic
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 4, 400, 200
_CONTAINERS = (list, tuple, dict, set, frozenset)


def short_text(value: Any) -> str:
    """``str(value)``, but containers are shown abridged (a shared structure can be astronomically long)."""
    return _SHORT_REPR.repr(value) if isinstance(value, _CONTAINERS) else str(value)


class RunState:
    """The deadline and the first rule break of one run of sandboxed code."""

    __slots__ = ("deadline", "limit", "line", "violation")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.deadline = _now() + limit
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
_SEQUENCES = (str, bytes, list, tuple)


def check_size(value: T) -> T:
    """Return ``value`` unless it is a sequence longer than ``MAX_ITEMS``."""
    if isinstance(value, _SEQUENCES) and len(value) > MAX_ITEMS:
        refuse(f"The result is too large ({len(value):,} items; the limit is {MAX_ITEMS:,})")
    return value


def check_decimal(value: T) -> T:
    """Return ``value`` unless it is a Decimal whose exponent makes ``int()`` or formatting explode."""
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) > MAX_DECIMAL_EXPONENT:
        refuse(
            f"Decimal {value} is too large or too small to convert (exponent limit {MAX_DECIMAL_EXPONENT:,})"
        )
    return value


def check_items(count: int) -> None:
    """Refuse building a sequence of ``count`` items when that is over ``MAX_ITEMS``."""
    if count > MAX_ITEMS:
        refuse(f"The result would be too large (more than {MAX_ITEMS:,} items)")


def check_bits(bits: int) -> None:
    """Refuse building an integer of ``bits`` bits when that is over ``MAX_INT_BITS``."""
    if bits > MAX_INT_BITS:
        refuse(f"The result would be too large a number (more than {MAX_INT_BITS:,} bits)")


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
    """``a % b``; for %-formatting, refuses ``*`` widths and widths that add up to too much text."""
    if not isinstance(a, (str, bytes)):
        return a % b
    for arg in b.values() if isinstance(b, Mapping) else b if isinstance(b, tuple) else (b,):
        check_decimal(arg)
    text = a if isinstance(a, str) else a.decode("latin-1")
    total = 0
    for width, precision in _PRINTF.findall(text):
        if "*" in (width, precision) or len(width) > 7 or len(precision) > 7:
            refuse(f"%-format width or precision '{width}.{precision}' is not allowed")
        total += int(width or 0) + int(precision or 0)
    check_items(total)
    return check_size(a % b)


def checked_iadd(a: Any, b: Any) -> Any:
    """``a += b`` (lists grow in place)."""
    if isinstance(a, list):
        checked_extend(a, b)
        return a
    return checked_add(a, b)


def checked_imul(a: Any, b: Any) -> Any:
    """``a *= b`` (lists grow in place)."""
    if isinstance(a, list) and isinstance(b, int):
        check_items(len(a) * b)
        a *= b
        return a
    return checked_mul(a, b)


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": checked_iadd,
    "-=": operator.isub,
    "*=": checked_imul,
    "/=": operator.itruediv,
    "%=": checked_mod,
    "**=": checked_pow,
    "<<=": checked_lshift,
    ">>=": operator.irshift,
    "|=": operator.ior,
    "^=": operator.ixor,
    "&=": operator.iand,
    "//=": operator.ifloordiv,
    "@=": operator.imatmul,
}


def inplacevar(op: str, target: Any, value: Any) -> Any:
    """Perform the augmented assignment ``op`` (``"+="``...) with the size checks of the plain operators."""
    return _INPLACE[op](target, value)


def checked_extend(target: list[Any], items: Iterable[Any]) -> None:
    """``target.extend(items)``, refusing lists longer than ``MAX_ITEMS``."""
    extra = items if isinstance(items, (list, tuple, str, dict, set, frozenset)) else list(items)
    check_items(len(target) + len(extra))
    target.extend(extra)


def format_spec_problem(spec: str) -> str | None:
    """Return why a format specification is refused (a width or precision over the limit), or None."""
    for digits in re.findall(r"\d+", spec):
        if len(digits) > 6 or int(digits) > MAX_FORMAT_WIDTH:
            return f"Format width {digits} is too large (the limit is {MAX_FORMAT_WIDTH:,})"
    return None


# ------------------------------------------------------------------------------------- text method guards
class _SafeFormatter(string.Formatter):
    """``str.format`` whose field names go through the attribute guard and whose widths are bounded."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = guarded_getattr(obj, key) if is_attr else obj[key]
        return obj, first

    def format_field(self, value: Any, format_spec: str) -> Any:
        check_decimal(value)
        problem = format_spec_problem(format_spec)
        if problem:
            refuse(problem)
        return check_size(format(value, format_spec))


_FORMATTER = _SafeFormatter()


def safe_format(template: str, /, *args: Any, **kwargs: Any) -> str:
    """``template.format(*args, **kwargs)`` without attribute walking or oversized widths."""
    if not isinstance(template, str):
        raise TypeError("format() needs a str template")
    return check_size(_FORMATTER.vformat(template, args, kwargs))


def safe_format_map(template: str, mapping: Mapping[str, Any]) -> str:
    """``template.format_map(mapping)`` under the rules of :func:`safe_format`."""
    return safe_format(template, **mapping)


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
        hits = hits if count < 0 else min(hits, count)
        check_items(len(text) + hits * (len(new) - len(old)))
    return text.replace(old, new, count)


def safe_translate(text: Any, table: Any) -> Any:
    """``text.translate(table)``; a str table must be a dict, and the result is size-checked."""
    if isinstance(text, str):
        if not isinstance(table, dict):
            refuse("str.translate() needs a dict made by str.maketrans()")
        longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
        check_items(len(text) * longest)
    return text.translate(table)


def safe_expandtabs(text: Any, tabsize: int = 8) -> Any:
    """``text.expandtabs(tabsize)``, refusing results longer than ``MAX_ITEMS``."""
    tab = "\t" if isinstance(text, str) else b"\t"
    check_items(len(text) + text.count(tab) * max(tabsize, 0))
    return text.expandtabs(tabsize)


def _width_checked(name: str) -> Callable[..., Any]:
    def call(obj: Any, *args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and value > MAX_ITEMS:
                refuse(f"{name}() size {value} is too large (the limit is {MAX_ITEMS:,})")
        return getattr(obj, name)(*args, **kwargs)

    return call


_TEXT_METHODS: dict[str, Callable[..., Any]] = {
    "format": safe_format,
    "format_map": safe_format_map,
    "join": safe_join,
    "replace": safe_replace,
    "translate": safe_translate,
    "expandtabs": safe_expandtabs,
    **{name: _width_checked(name) for name in ("ljust", "rjust", "center", "zfill")},
}
_to_bytes = _width_checked("to_bytes")


def _bound(func: Callable[..., Any], obj: Any) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return func(obj, *args, **kwargs)

    return call


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
    return _result_checked(wrapper) if isinstance(obj, type) else _bound(wrapper, obj)


# ------------------------------------------------------------------------------------ attribute and writes
FORBIDDEN_ATTRIBUTES = INSPECT_ATTRIBUTES | frozenset(
    {"mro", "func_globals", "func_code", "func_closure", "im_func", "im_self", "im_class", "cell_contents"}
)
_OPAQUE_TYPES = frozenset(
    {
        types.BuiltinFunctionType,
        types.FunctionType,
        types.MethodType,
        types.CodeType,
        types.FrameType,
        types.TracebackType,
        types.GeneratorType,
        types.CoroutineType,
        types.AsyncGeneratorType,
        types.ModuleType,
        types.CellType,
        types.MethodDescriptorType,
        types.WrapperDescriptorType,
        types.MethodWrapperType,
        types.ClassMethodDescriptorType,
        types.GetSetDescriptorType,
        types.MemberDescriptorType,
        functools.partial,
        operator.attrgetter,
        operator.itemgetter,
        operator.methodcaller,
        staticmethod,
        classmethod,
        property,
    }
)


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """The ``_getattr_`` guard (and the ``getattr`` builtin) of sandboxed code.

    Refuses names starting with ``_`` and frame/code/generator internals, refuses every attribute of
    functions, code, frames, generators and descriptors, and swaps ``str`` methods that could build
    huge strings or walk attributes (``format``) for checked versions.

    Raises:
        SandboxViolation: the attribute is off limits.
    """
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in FORBIDDEN_ATTRIBUTES:
        refuse(f"Access to attribute '{name}' is not allowed")
    kind = type(obj)
    if kind in _OPAQUE_TYPES:
        refuse(f"Attributes of {kind.__name__} objects are not accessible")
    if kind is str or kind is bytes or obj is str or obj is bytes:
        return _text_attr(obj, name, default)
    if name == "extend" and (isinstance(obj, list) or obj is list):
        return checked_extend if obj is list else _bound(checked_extend, obj)
    if name == "to_bytes" and (isinstance(obj, int) or obj is int or obj is SafeInt):
        return _to_bytes if isinstance(obj, type) else _bound(_to_bytes, obj)
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


SafeInt.__name__ = SafeInt.__qualname__ = "int"
SafeInt.__module__ = "builtins"


def safe_sum(iterable: Iterable[Any], /, start: Any = 0) -> Any:
    """``sum`` of numbers (or dates/durations); refuses adding up sequences (quadratic in C)."""
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
    ast.Pow: "_pow_",
    ast.Mult: "_mul_",
    ast.Add: "_add_",
    ast.LShift: "_lshift_",
    ast.Mod: "_mod_",
}
OPERATOR_GUARDS: dict[str, Callable[..., Any]] = {
    "_pow_": checked_pow,
    "_mul_": checked_mul,
    "_add_": checked_add,
    "_lshift_": checked_lshift,
    "_mod_": checked_mod,
    "_fstr_": check_size,
    "_fmtval_": check_decimal,
}


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
