"""Run BPMN scripts, conditions and expressions under RestrictedPython, never under plain exec/eval.

``SandboxedScriptEngine`` replaces SpiffWorkflow's ``PythonScriptEngine``; its ``RestrictedEnvironment`` is
restricted too, because SpiffWorkflow sometimes calls ``script_engine.environment.evaluate`` directly
(message correlations, process completion conditions).

Sandboxed code sees its task data as variables, a curated set of builtins, ``datetime``, ``date``,
``timedelta``, ``Decimal`` and read-only views of the allowed modules (math, datetime, decimal, json).
Rule breaks raise ``SandboxViolation``; ordinary errors raise ``ScriptError``.  The guards themselves live
in ``engine.sandbox_policy``.

Limits that an in-process sandbox cannot enforce: a single C-level operation on a deeply *shared*
structure (``a = [a, a]`` sixty times, then ``str(a)``, ``hash`` or ``==``) can still hold a worker
thread or exhaust memory; run workers with a memory limit when script authors are not trusted.
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import importlib
import itertools
import json
import math
import operator
import traceback
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NoReturn

from RestrictedPython import limited_builtins, safe_builtins
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from . import sandbox_policy as policy
from .errors import HandlerError, MotcuaError, SandboxViolation, ScriptError, UnknownOperatorError

__all__ = [
    "DEFAULT_ALLOWED_MODULES",
    "ModuleProxy",
    "RestrictedEnvironment",
    "SandboxedScriptEngine",
    "ScriptSyntaxError",
    "check_script",
]

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
_MAX_DATA_SIZE = 1_000_000  # data nodes, plus one per 32 characters of text


class ScriptSyntaxError(ScriptError, SyntaxError):
    """A script or expression does not parse; also a ``SyntaxError`` for SpiffWorkflow's DMN engine."""


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
        policy.refuse(f"'{self._name}.{attr}' is not allowed")

    def __setattr__(self, attr: str, value: Any) -> NoReturn:
        policy.refuse(f"Module '{self._name}' is read-only")

    def __delattr__(self, attr: str) -> NoReturn:
        policy.refuse(f"Module '{self._name}' is read-only")

    def __dir__(self) -> list[str]:
        return sorted(self._attrs)

    def __repr__(self) -> str:
        return f"<module '{self._name}' (sandboxed)>"


def _product_bits(values: Iterable[Any]) -> None:
    policy.check_bits(sum(value.bit_length() for value in values if isinstance(value, int)))


def _factorial(n: int) -> int:
    if isinstance(n, int) and n > 1:
        policy.check_bits(n * n.bit_length())
    return math.factorial(n)


def _comb(n: int, k: int) -> int:
    if isinstance(n, int):
        policy.check_bits(n)
    return math.comb(n, k)


def _perm(n: int, k: int | None = None) -> int:
    if isinstance(n, int) and isinstance(k if k is not None else n, int):
        policy.check_bits(max(n if k is None else k, 0) * n.bit_length())
    return math.perm(n, k)


def _rounding(func: Callable[[Any], int]) -> Callable[[Any], int]:
    def call(x: Any) -> int:
        return func(policy.check_decimal(x))

    return call


def _prod(iterable: Iterable[Any], /, *, start: Any = 1) -> Any:
    values = list(iterable)
    _product_bits([start, *values])
    return math.prod(values, start=start)


def _lcm(*integers: int) -> int:
    _product_bits(integers)
    return math.lcm(*integers)


def _json_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "cls" in kwargs:
        policy.refuse("json: the 'cls' option is not allowed")
    indent, separators = kwargs.get("indent"), kwargs.get("separators") or ()
    if len(str(indent or "")) > 8 or (isinstance(indent, int) and indent > 16):
        policy.refuse("json.dumps(): indent is too large")
    if any(len(str(separator)) > 8 for separator in separators):
        policy.refuse("json.dumps(): separators are too long")
    return kwargs


def _dumps(obj: Any, **kwargs: Any) -> str:
    return policy.check_size(json.dumps(obj, **_json_options(kwargs)))


def _loads(text: str | bytes, **kwargs: Any) -> Any:
    return json.loads(text, **_json_options(kwargs))


_MODULE_OVERRIDES: dict[tuple[str, str], Callable[..., Any]] = {
    ("math", "factorial"): _factorial,
    ("math", "comb"): _comb,
    ("math", "perm"): _perm,
    ("math", "prod"): _prod,
    ("math", "floor"): _rounding(math.floor),
    ("math", "ceil"): _rounding(math.ceil),
    ("math", "trunc"): _rounding(math.trunc),
    ("math", "lcm"): _lcm,
    ("json", "dumps"): _dumps,
    ("json", "loads"): _loads,
}


def _build_modules(allowed: Mapping[str, frozenset[str]]) -> dict[str, ModuleProxy]:
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
            policy.refuse(f"Import of module '{name}' is not allowed")
        for attr in fromlist or ():
            if attr not in dir(module):
                policy.refuse(f"Import of '{attr}' from module '{name}' is not allowed")
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


def _guard_globals(modules: Mapping[str, ModuleProxy]) -> dict[str, Any]:
    names: dict[str, Any] = {**safe_builtins, **limited_builtins}
    for name in _DROPPED_BUILTINS:
        names.pop(name, None)
    names.update({name: getattr(builtins, name) for name in _EXTRA_BUILTINS})
    names.update({name: policy.forbidden(name) for name in policy.FORBIDDEN_BUILTINS})
    names.update(range=policy.limited_range, pow=policy.checked_pow, sum=policy.safe_sum)
    names.update(round=policy.safe_round, iter=policy.safe_iter, getattr=policy.guarded_getattr)
    names["int"] = policy.SafeInt
    names["__import__"] = _importer(modules)
    return {
        "__builtins__": names,
        "_getattr_": policy.guarded_getattr,
        "_getitem_": operator.getitem,
        "_write_": policy.guarded_write,
        "_inplacevar_": policy.inplacevar,
        "_apply_": policy.guarded_apply,
        "_print_": policy.PrintCollector,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        **policy.OPERATOR_GUARDS,
    }


class _Place:
    """What ran (a script, or an expression and its text) and in which BPMN element, for messages."""

    __slots__ = ("element_id", "is_script", "source")

    def __init__(self, source: Any, element_id: str | None, is_script: bool) -> None:
        self.source, self.element_id, self.is_script = source, element_id, is_script

    def message(self, verb: str, reason: str, line: int | None = None) -> str:
        if self.is_script:
            who = "Script"
        else:
            text = " ".join(str(self.source).split())
            who = f"Expression '{text if len(text) <= 80 else text[:77] + '...'}'"
        who += f" of task '{self.element_id}'" if self.element_id else ""
        where = f" on line {line}" if line and self.is_script else ""
        return f"{who} {verb}{where}: {reason}"

    def violation(self, reason: str, line: int | None) -> SandboxViolation:
        return SandboxViolation(
            self.message("broke a sandbox rule", reason, line), element_id=self.element_id, line=line
        )


def _describe(exc: BaseException) -> str:
    try:
        plain = all(isinstance(arg, (str, int, float, Decimal)) for arg in exc.args)
        detail = str(exc) if plain else ", ".join(map(policy.short_text, exc.args))
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    except Exception:  # a broken __str__ must not hide the error
        text = type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def _line_of(exc: BaseException) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == policy.SCRIPT_FILENAME:
            line = lineno
    return line


def _failure(exc: Exception, state: policy.RunState, place: _Place) -> MotcuaError:
    if state.violation is not None:
        return place.violation(state.violation, state.line)
    line = _line_of(exc)
    if isinstance(exc, SandboxViolation):
        return place.violation(exc.message, line)
    if isinstance(exc, RecursionError):
        return place.violation("Script exceeded the maximum recursion depth", line)
    if isinstance(exc, MemoryError):
        return place.violation("Script ran out of memory", line)
    if isinstance(exc, MotcuaError):
        return exc  # raised by a trusted helper given in the environment's globals
    return ScriptError(place.message("failed", _describe(exc), line), element_id=place.element_id, line=line)


_ATOMS = frozenset({int, float, bool, type(None), Decimal, date, datetime, timedelta, complex})


def _storable(value: Any) -> bool:
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
            if not _storable(value):
                raise TypeError(type(value).__name__)
            return 1
        key = id(value)
        if key in self.memo:
            return self.memo[key]
        if key in self.active or len(value) > _MAX_DATA_SIZE:
            raise OverflowError  # refers to itself, or too long
        self.active.add(key)
        total = 1
        for child in itertools.chain.from_iterable(value.items()) if isinstance(value, dict) else value:
            kind = type(child)
            total += 1 if kind in _ATOMS else 1 + len(child) // 32 if kind is str else self.of(child)
            if total > _MAX_DATA_SIZE:
                raise OverflowError
        self.active.discard(key)
        self.memo[key] = total
        return total


def _check_data(values: Mapping[str, Any], place: _Place) -> None:
    """Refuse keeping functions nested in data, and data too big (or cyclic) for the task's store."""
    sizer, total = _DataSize(), 0
    for name, value in values.items():
        try:
            total += sizer.of(value)
        except TypeError as exc:
            reason = f"'{name}' holds a {exc}, which task data cannot keep"
            raise ScriptError(place.message("failed", reason), element_id=place.element_id) from None
        except (OverflowError, RecursionError):
            total = _MAX_DATA_SIZE + 1
        if total > _MAX_DATA_SIZE:
            raise place.violation("Its variables are too large, too deep or refer to themselves", None)


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that compiles everything with RestrictedPython.

    Args:
        globals: extra names (trusted helpers, constants) visible to all code; none may start with ``_``.
        time_limit: wall-clock seconds each script or expression may run.
        allowed_modules: module name -> attribute names that ``import`` may reach (default:
            ``DEFAULT_ALLOWED_MODULES``).
        cache_size: how many compiled sources to keep (least recently used go first).
    """

    def __init__(
        self,
        globals: dict[str, Any] | None = None,
        *,
        time_limit: float = 2.0,
        allowed_modules: Mapping[str, frozenset[str]] | None = None,
        cache_size: int = 2048,
    ) -> None:
        extra = dict(globals or {})
        if any(not isinstance(name, str) or name.startswith("_") for name in extra):
            raise ValueError("environment globals must be names that do not start with '_'")
        if time_limit <= 0:
            raise ValueError("time_limit must be positive")
        super().__init__(extra)
        self.time_limit = float(time_limit)
        self.modules = _build_modules(DEFAULT_ALLOWED_MODULES if allowed_modules is None else allowed_modules)
        self._guards = _guard_globals(self.modules)
        defaults = {"datetime": datetime, "date": date, "timedelta": timedelta, "Decimal": Decimal}
        visible = {name: proxy for name, proxy in self.modules.items() if "." not in name}
        self._base: dict[str, Any] = {**visible, **defaults, **extra, **self._guards}
        self._compile = functools.lru_cache(maxsize=cache_size)(policy.compile_source)

    def evaluate(
        self,
        expression: str,
        context: Mapping[str, Any],
        external_context: Mapping[str, Any] | None = None,
        *,
        element_id: str | None = None,
    ) -> Any:
        """Evaluate ``expression`` with the task data ``context`` (and ``external_context``) as variables.

        Returns:
            The expression's value.

        Raises:
            SandboxViolation: the expression breaks a sandbox rule (also at compile time) or runs too long.
            ScriptError: it does not parse (``ScriptSyntaxError``) or fails (NameError, ZeroDivisionError...).
        """
        place = _Place(expression, element_id, False)
        code = self.compile(expression, "eval", place)
        return self._run(code, self._globals_for(context, external_context), place)

    def execute(
        self,
        script: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
        *,
        element_id: str | None = None,
    ) -> bool:
        """Run ``script`` on a copy of the task data ``context``; on success write its variables back.

        New and changed variables are stored in ``context`` and deleted ones removed; functions, modules,
        iterators and names starting with ``_`` are not kept.  On failure ``context`` is untouched.

        Returns:
            True.

        Raises:
            SandboxViolation: a sandbox rule was broken (even if the script caught the error), the time
                limit passed, or the resulting data is too large to keep.
            ScriptError: the script does not parse (``ScriptSyntaxError``) or fails.
        """
        place = _Place(script, element_id, True)
        code = self.compile(script, "exec", place)
        try:
            data = copy.deepcopy({k: v for k, v in context.items() if isinstance(k, str) and k[:1] != "_"})
        except Exception as exc:
            raise ScriptError(
                place.message("failed", f"task data cannot be copied: {_describe(exc)}")
            ) from exc
        run_globals = self._globals_for(data, external_context)
        self._run(code, run_globals, place)
        kept = self._kept(run_globals, data, external_context)
        _check_data(kept, place)
        for name in [k for k in context if isinstance(k, str) and k[:1] != "_" and k not in kept]:
            del context[name]
        context.update(kept)
        return True

    def call_service(self, context: Any, **kwargs: Any) -> NoReturn:
        """Not supported here: ``SandboxedScriptEngine.call_service`` routes service calls."""
        raise NotImplementedError("service calls are routed by SandboxedScriptEngine.call_service")

    def compile(self, source: str, mode: Literal["exec", "eval"], place: _Place | None = None) -> Any:
        """Return the (cached) restricted code object of ``source``.

        Raises:
            ScriptSyntaxError: ``source`` does not parse (or is not text).
            SandboxViolation: RestrictedPython's policy rejects it; the message carries its reasons.
        """
        place = place or _Place(source, None, mode == "exec")
        if not isinstance(source, str):
            raise ScriptSyntaxError(place.message("has a syntax error", "the code is not text"))
        outcome = self._compile(source, mode)
        if outcome.code is not None:
            return outcome.code
        reason = "; ".join(outcome.errors)
        line = _first_line(outcome.errors)
        if outcome.syntax_error:
            raise ScriptSyntaxError(place.message("has a syntax error", reason), element_id=place.element_id,
                                    line=line)  # fmt: skip
        raise SandboxViolation(place.message("was rejected", reason), element_id=place.element_id, line=line)

    def compile_cache_info(self) -> Any:
        """Return the ``functools`` cache statistics (hits, misses, currsize) of compiled sources."""
        return self._compile.cache_info()

    def _globals_for(self, data: Mapping[str, Any], external: Mapping[str, Any] | None) -> dict[str, Any]:
        run_globals = self._base.copy()
        if external:
            run_globals.update(external)
        run_globals.update(data)
        run_globals.update(self._guards)  # task data can never replace a guard
        return run_globals

    def _kept(self, run_globals: dict[str, Any], data: Mapping[str, Any], external: Any) -> dict[str, Any]:
        """The variables to write back: data, not guards, defaults, functions or modules."""
        kept = {}
        for name, value in run_globals.items():
            if not isinstance(name, str) or name[:1] == "_" or not _storable(value):
                continue
            if name not in data and (
                self._base.get(name, _MISSING) is value
                or (external and external.get(name, _MISSING) is value)
            ):
                continue  # an untouched default or external name, not task data
            kept[name] = value
        return kept

    def _run(self, code: Any, run_globals: dict[str, Any], place: _Place) -> Any:
        state = policy.RunState(self.time_limit)
        run_globals["_tick_"] = state.tick
        run_globals["_getiter_"] = state.getiter
        token = policy.CURRENT_RUN.set(state)
        try:
            result = eval(code, run_globals)  # noqa: S307 - a RestrictedPython code object with guarded globals
        except Exception as exc:
            raise _failure(exc, state, place) from exc
        finally:
            policy.CURRENT_RUN.reset(token)
        if state.violation is not None:
            raise place.violation(state.violation, state.line)
        return result


_MISSING = object()


def _first_line(errors: Iterable[str]) -> int | None:
    for error in errors:
        head = error.split(":", 1)[0]
        if head.startswith("Line ") and head[5:].isdigit():
            return int(head[5:])
    return None


def _element_of(task: Any) -> str | None:
    return None if task is None else getattr(task.task_spec, "name", None)


class SandboxedScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's script engine, running everything in a :class:`RestrictedEnvironment`.

    Args:
        environment: the environment to run in (default: a new ``RestrictedEnvironment()``).
        service_caller: ``(task, operation_name, operation_params) -> JSON text`` for service tasks.
    """

    environment: RestrictedEnvironment

    def __init__(
        self,
        environment: RestrictedEnvironment | None = None,
        service_caller: Callable[[Any, str, dict[str, Any]], str] | None = None,
    ) -> None:
        super().__init__(environment=environment or RestrictedEnvironment())
        self.service_caller = service_caller

    def validate(self, expression: str) -> None:
        """Compile ``expression`` (eval mode) without running it.

        Raises:
            ScriptSyntaxError: it does not parse (a ``ScriptError`` and a ``SyntaxError``).
            SandboxViolation: RestrictedPython's policy rejects it.
        """
        self.environment.compile(expression, "eval")

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        """Evaluate ``expression`` over ``task.data`` (``task`` may be None).

        Raises:
            SandboxViolation, ScriptError: as ``RestrictedEnvironment.evaluate``, naming the task's element.
        """
        data = {} if task is None else task.data
        return self.environment.evaluate(expression, data, external_context, element_id=_element_of(task))

    def execute(self, task: Any, script: str, external_context: Mapping[str, Any] | None = None) -> bool:
        """Run ``script`` over ``task.data`` (``task`` may be None), keeping its variables on success.

        Raises:
            SandboxViolation, ScriptError: as ``RestrictedEnvironment.execute``, naming the task's element.
        """
        data = {} if task is None else task.data
        return self.environment.execute(script, data, external_context, element_id=_element_of(task))

    def call_service(self, task: Any, operation_name: str, operation_params: dict[str, Any]) -> str:
        """Call the service of a service task through ``service_caller``; return its JSON text.

        Raises:
            UnknownOperatorError: no ``service_caller`` was given.
            HandlerError: the caller failed (its own ``MotcuaError`` is passed on unchanged).
        """
        if self.service_caller is None:
            raise UnknownOperatorError(operation_name)
        try:
            return self.service_caller(task, operation_name, operation_params)
        except MotcuaError:
            raise
        except Exception as exc:
            element = _element_of(task)
            raise HandlerError(
                f"Service call '{operation_name}' of task '{element}' failed: {_describe(exc)}",
                element_id=element,
                operator=operation_name,
            ) from exc


def check_script(
    source: str, mode: str = "exec", *, allowed_modules: Mapping[str, frozenset[str]] | None = None
) -> list[str]:
    """Compile ``source`` under the sandbox rules without running it; return its problems for a linter.

    Besides syntax and RestrictedPython policy errors it reports imports outside ``allowed_modules``
    (default ``DEFAULT_ALLOWED_MODULES``) and calls of builtins the sandbox forbids.

    Returns:
        Messages like ``'Line 2: Import of module 'os' is not allowed'``; empty when the code is clean.
    """
    if mode not in ("exec", "eval"):
        raise ValueError("mode must be 'exec' or 'eval'")
    if not isinstance(source, str):
        return ["Line 1: the code is not text"]
    outcome = policy.compile_source(source, "exec" if mode == "exec" else "eval")
    if outcome.errors:
        return list(outcome.errors)
    allowed = DEFAULT_ALLOWED_MODULES if allowed_modules is None else allowed_modules
    return list(_lint(ast.parse(source, mode=mode), allowed))


def _lint(tree: ast.AST, allowed: Mapping[str, frozenset[str]]) -> Iterator[str]:
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 1)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from (f"Line {line}: {problem}" for problem in _import_problems(node, allowed))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in policy.FORBIDDEN_BUILTINS:
            yield f"Line {line}: '{getattr(node.func, 'id', '')}' is not allowed in scripts"


def _import_problems(
    node: ast.Import | ast.ImportFrom, allowed: Mapping[str, frozenset[str]]
) -> Iterator[str]:
    if isinstance(node, ast.Import):
        modules = [alias.name for alias in node.names]
    else:
        modules = ["." * node.level + (node.module or "")]
    for module in modules:
        if module not in allowed:
            yield f"Import of module '{module}' is not allowed"
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name not in allowed[module]:
                    yield f"Import of '{alias.name}' from module '{module}' is not allowed"
