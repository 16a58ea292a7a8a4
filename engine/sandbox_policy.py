"""The rules sandboxed code runs under: the restricting compiler and the hooks and builtins it runs with.

``engine.sandbox`` assembles these into an environment.  The rules are split over these modules, lowest
first (each imports only those before it):

- ``engine.sandbox_core``: ``RunState``, ``CURRENT_RUN`` and :func:`refuse`, through which every refusal
  goes, recording the first refusal of the current run so that a script cannot hide a rule break by
  catching the exception;
- ``engine.sandbox_limits``: size limits and the size-checked operators;
- ``engine.sandbox_guards``: ``str`` method wrappers, the attribute and write guards, the safe builtins;
- ``engine.sandbox_modules``: the allowed modules and the task-data checks;
- this module: :class:`SandboxTransformer`, :func:`compile_source` and :func:`guard_globals`.  It also
  re-exports the names ``engine.sandbox`` uses from the others.

Bounded: wall time (a deadline checked in every loop, function call and comprehension step); integer
sizes (``**``, ``*``, ``<<``, ``pow``, ``round``, ``int(Decimal)``); sequence sizes (``*``, ``+``,
%-formatting, f-strings, ``str`` methods, ``list.extend``, slice assignment, ``range``).
"""

from __future__ import annotations

import ast
import builtins
import operator
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, cast

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, limited_builtins, safe_builtins
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations

from .sandbox_core import CURRENT_RUN, SCRIPT_FILENAME, RunState, refuse, short_text
from .sandbox_guards import (
    FORBIDDEN_BUILTINS,
    PrintCollector,
    SafeInt,
    forbidden,
    guarded_apply,
    guarded_getattr,
    guarded_write,
    limited_range,
    safe_iter,
    safe_round,
    safe_sum,
)
from .sandbox_limits import (
    check_decimal,
    check_size,
    checked_add,
    checked_lshift,
    checked_mod,
    checked_mul,
    checked_pow,
    format_spec_problem,
    inplacevar,
)
from .sandbox_modules import DEFAULT_ALLOWED_MODULES, ModuleProxy, build_modules, data_problem, storable

__all__ = [
    "CURRENT_RUN",
    "DEFAULT_ALLOWED_MODULES",
    "FORBIDDEN_BUILTINS",
    "OPERATOR_GUARDS",
    "SCRIPT_FILENAME",
    "CompileOutcome",
    "ModuleProxy",
    "RunState",
    "SandboxTransformer",
    "build_modules",
    "compile_source",
    "data_problem",
    "guard_globals",
    "refuse",
    "short_text",
    "storable",
]


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


# -------------------------------------------------------------------------------------------------- hooks
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
