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
import copy
import functools
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NoReturn

from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from . import sandbox_policy as policy
from .errors import HandlerError, MotcuaError, SandboxViolation, ScriptError, UnknownOperatorError
from .sandbox_policy import DEFAULT_ALLOWED_MODULES, ModuleProxy

__all__ = [
    "DEFAULT_ALLOWED_MODULES", "ModuleProxy", "RestrictedEnvironment", "SandboxedScriptEngine",
    "ScriptSyntaxError", "check_script",
]  # fmt: skip


class ScriptSyntaxError(ScriptError, SyntaxError):
    """A script or expression does not parse; also a ``SyntaxError`` for SpiffWorkflow's DMN engine."""


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
        self.modules = policy.build_modules(
            DEFAULT_ALLOWED_MODULES if allowed_modules is None else allowed_modules
        )
        self._guards = policy.guard_globals(self.modules)
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
            reason = f"task data cannot be copied: {_describe(exc)}"
            raise ScriptError(place.message("failed", reason), element_id=element_id) from exc
        run_globals = self._globals_for(data, external_context)
        self._run(code, run_globals, place)
        kept = self._kept(run_globals, data, external_context)
        problem = policy.data_problem(kept)
        if problem is not None:
            is_violation, reason = problem
            if is_violation:
                raise place.violation(reason, None)
            raise ScriptError(place.message("failed", reason), element_id=place.element_id)
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
            if not isinstance(name, str) or name[:1] == "_" or not policy.storable(value):
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
