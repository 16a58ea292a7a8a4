"""The script sandbox: normal scripts work, data is written back only on success, escapes are refused."""

from __future__ import annotations

import copy
import os
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine import sandbox_policy
from engine.errors import HandlerError, SandboxViolation, ScriptError, UnknownOperatorError
from engine.sandbox import (
    RestrictedEnvironment,
    SandboxedScriptEngine,
    ScriptSyntaxError,
    check_script,
)

LIMIT = 0.2  # seconds; small so that runaway scripts end quickly


class FakeTask:
    """Just what the script engine reads from a SpiffWorkflow task."""

    def __init__(self, data: dict[str, Any] | None = None, name: str = "check_fee") -> None:
        self.data = {} if data is None else data
        self.task_spec = SimpleNamespace(name=name)


@pytest.fixture
def env() -> RestrictedEnvironment:
    return RestrictedEnvironment(time_limit=LIMIT)


@pytest.fixture
def engine(env: RestrictedEnvironment) -> SandboxedScriptEngine:
    return SandboxedScriptEngine(env)


# ------------------------------------------------------------------------------------------- normal code
@pytest.mark.parametrize(
    ("expression", "data", "expected"),
    [
        ("fee * copies + 1", {"fee": 2, "copies": 3}, 7),
        ("amount > 1000 and status == 'ok'", {"amount": 1500, "status": "ok"}, True),
        ("not approved or amount < 10", {"approved": True, "amount": 50}, False),
        ("[x * 2 for x in items if x > 1]", {"items": [1, 2, 3]}, [4, 6]),
        ("{k: v for k, v in pairs}", {"pairs": [("a", 1), ("b", 2)]}, {"a": 1, "b": 2}),
        ("sum(x for x in range(5))", {}, 10),
        ("Decimal('0.10') + Decimal('0.20')", {}, Decimal("0.30")),
        ("date(2024, 1, 31) + timedelta(days=1)", {}, date(2024, 2, 1)),
        ("(deadline - submitted).days", {"deadline": date(2024, 3, 1), "submitted": date(2024, 2, 1)}, 29),
        ("math.floor(math.sqrt(17))", {}, 4),
        ("json.loads('{\"a\": [1, 2]}')['a']", {}, [1, 2]),
        ("sorted(names, key=lambda n: len(n))", {"names": ["ccc", "a", "bb"]}, ["a", "bb", "ccc"]),
        ("'{} x {}'.format(2, 3)", {}, "2 x 3"),
        ("f'{name}: {fee:,.2f}'", {"name": "Phí", "fee": 1234.5}, "Phí: 1,234.50"),
        ("customer.get('tier', 'basic')", {"customer": {}}, "basic"),
        ("max(2 ** 10, 3 * 4, 1 << 3)", {}, 1024),
        ("'%s-%05d' % ('HS', 42)", {}, "HS-00042"),
        ("isinstance(n, int) and not isinstance('5', int) and issubclass(bool, int)", {"n": 5}, True),
        ("int('42') + int(Decimal('2.9')) + int('ff', 16)", {}, 299),
    ],
)
def test_expressions_evaluate(
    env: RestrictedEnvironment, expression: str, data: dict[str, Any], expected: Any
):
    assert env.evaluate(expression, data) == expected


SCRIPTS = {
    "arithmetic": ("total = fee * copies - discount", {"fee": 10, "copies": 3, "discount": 5}, {"total": 25}),
    "containers": (
        "doc = {'code': code, 'items': [1, 2]}\ndoc['items'].append(3)\ndoc['n'] = len(doc['items'])",
        {"code": "A1"},
        {"doc": {"code": "A1", "items": [1, 2, 3], "n": 3}},
    ),
    "loops": (
        "total = 0\nfor x in range(10):\n    total += x\nn = 0\nwhile n < 5:\n    n += 1",
        {},
        {"total": 45, "n": 5},
    ),
    "comprehensions": (
        "squares = [x * x for x in range(4)]\n"
        "odd = {x for x in range(6) if x % 2}\n"
        "pairs = dict(zip('ab', [1, 2]))",
        {},
        {"squares": [0, 1, 4, 9], "odd": {1, 3, 5}, "pairs": {"a": 1, "b": 2}},
    ),
    "decimal": (
        "from decimal import ROUND_HALF_UP\n"
        "fee = (Decimal('10.005') * 2).quantize(Decimal('0.01'), ROUND_HALF_UP)",
        {},
        {"fee": Decimal("20.01")},
    ),
    "dates": (
        "from datetime import date\ndue = date(2024, 2, 28) + timedelta(days=2)\nweekday = due.weekday()",
        {},
        {"due": date(2024, 3, 1), "weekday": 4},
    ),
    "datetime_module": (
        "import datetime\nstamp = datetime.datetime(2024, 5, 1, 8, 30).isoformat()",
        {},
        {"stamp": "2024-05-01T08:30:00"},
    ),
    "import_math": ("import math\nroot = math.sqrt(81)\nceil = math.ceil(2.1)", {}, {"root": 9.0, "ceil": 3}),
    "condition": (
        "approved = score >= 5 and not blocked",
        {"score": 7, "blocked": False},
        {"approved": True},
    ),
    "augmented": ("x += 1\nx *= 3\nwords = []\nwords += ['a']", {"x": 1}, {"x": 6, "words": ["a"]}),
    "nested_functions": (
        "def outer(n):\n    def inner(m):\n        return m * 2\n    return inner(n) + 1\nresult = outer(4)",
        {},
        {"result": 9},
    ),
    "recursion": (
        "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)\nf10 = fact(10)",
        {},
        {"f10": 3628800},
    ),
    "unpacking": (
        "a, (b, c) = 1, (2, 3)\nfor k, v in {'x': 1}.items():\n    key = k",
        {},
        {"a": 1, "c": 3, "key": "x"},
    ),
    "try_except": ("try:\n    v = int('x')\nexcept ValueError:\n    v = -1", {}, {"v": -1}),
    "print": ("print('fee', 5)\nlog = printed", {}, {"log": "fee 5\n"}),
    "json": ("import json\ntext = json.dumps({'a': 1}, sort_keys=True)", {}, {"text": '{"a": 1}'}),
    "strings": ("code = '-'.join(['HS', str(7).zfill(3)]).upper()", {}, {"code": "HS-007"}),
    "walrus": ("if (n := len(items)) > 1:\n    many = n", {"items": [1, 2]}, {"many": 2}),
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_normal_scripts_run(engine: SandboxedScriptEngine, name: str):
    script, data, expected = SCRIPTS[name]
    task = FakeTask(dict(data))
    assert engine.execute(task, script) is True
    for key, value in expected.items():
        assert task.data[key] == value


def test_engine_evaluate_reads_task_data(engine: SandboxedScriptEngine):
    assert engine.evaluate(FakeTask({"fee": 30}), "fee > 20") is True
    assert engine.evaluate(FakeTask({"fee": 30}), "fee + extra", external_context={"extra": 1}) == 31
    assert engine.evaluate(None, "1 + 1") == 2


def test_time_now_works(env: RestrictedEnvironment):
    assert isinstance(env.evaluate("datetime.now()", {}), datetime)


# ------------------------------------------------------------------------------------------ write-back
def test_new_changed_and_deleted_variables_are_written_back(env: RestrictedEnvironment):
    context = {"keep": 1, "change": 1, "drop": 1, "items": [1]}
    env.execute("change = 2\ndel drop\nitems.append(2)\nnew = 'x'", context)
    assert context == {"keep": 1, "change": 2, "items": [1, 2], "new": "x"}


def test_callables_modules_and_underscore_names_are_not_kept(env: RestrictedEnvironment):
    context = {"_internal": "secret", "x": 1}
    script = (
        "import math\nimport json as j\ndef helper():\n    return 1\n"
        "f = lambda: 2\nit = iter([1])\ny = helper()"
    )
    env.execute(script, context)
    assert context == {"_internal": "secret", "x": 1, "y": 1}


def test_default_globals_are_not_written_back(env: RestrictedEnvironment):
    context: dict[str, Any] = {}
    env.execute("today = date(2024, 1, 1)", context, {"office": "HN"})
    assert context == {"today": date(2024, 1, 1)}


def test_task_data_may_shadow_default_names(env: RestrictedEnvironment):
    context = {"date": "2024-01-01", "type": "renewal"}
    env.execute("label = type + '@' + date", context)
    assert context["label"] == "renewal@2024-01-01"


@pytest.mark.parametrize(
    "script",
    [
        "total = 5\nitems.append(99)\ndoc['k'] = 'v'\nx = 1 / 0",
        "total = 5\nitems.append(99)\nimport os",
        "total = 5\nitems.append(99)\nwhile True:\n    pass",
        "total = 5\nitems.append(99)\ndel doc\nraise ValueError('stop')",
        "total = 5\nitems.append(99)\nloop = []\nloop.append(loop)",
    ],
    ids=["runtime_error", "violation", "time_limit", "raise", "unstorable_data"],
)
def test_failed_script_leaves_context_untouched(env: RestrictedEnvironment, script: str):
    context = {"total": 1, "items": [1, 2], "doc": {"a": {"b": [1]}}, "when": date(2024, 1, 1)}
    before = copy.deepcopy(context)
    with pytest.raises(ScriptError):
        env.execute(script, context)
    assert context == before


def test_nested_functions_in_data_are_refused(env: RestrictedEnvironment):
    context: dict[str, Any] = {}
    with pytest.raises(ScriptError, match="holds a function"):
        env.execute("box = {'f': lambda: 1}", context)
    assert context == {}


def test_task_data_cannot_replace_the_guards(env: RestrictedEnvironment):
    hostile = {"_getattr_": getattr, "__builtins__": {"open": open}, "_getiter_": iter, "_write_": None}
    assert env.evaluate("x + 1", {"x": 1, **hostile}) == 2
    with pytest.raises(SandboxViolation):
        env.evaluate("getattr(x, '__class__')", {"x": 1, **hostile})
    with pytest.raises(SandboxViolation):
        env.execute("f = open('/etc/passwd')", {"x": 1, **hostile})


# --------------------------------------------------------------------------------------------- escapes
@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A file and an environment variable that an escaped script would create."""
    path = tmp_path / "pwned"
    monkeypatch.delenv("SANDBOX_CANARY", raising=False)
    yield path
    assert not path.exists(), "a script escaped the sandbox and wrote the canary file"
    assert "SANDBOX_CANARY" not in os.environ, "a script escaped the sandbox and set the canary variable"


ESCAPES = {
    "import_os": "import os\nos.system('touch {canary}')",
    "import_sys": "import sys\nsys.modules['os'].system('touch {canary}')",
    "import_submodule": "import os.path",
    "dunder_import": "__import__('os').system('touch {canary}')",
    "subclasses_walk": "x = ().__class__.__bases__[0].__subclasses__()",
    "open": "open('{canary}', 'w').write('x')",
    "open_by_alias": "f = open\nf('{canary}', 'w')",
    "eval": "eval('1')",
    "exec": "exec('x = 1')",
    "eval_alias": "e = eval\ne('1')",
    "compile": "compile('1', 'f', 'eval')",
    "getattr_dunder": "getattr(1, '__class__')",
    "getattr_dynamic": "name = '_' + '_class__'\ngetattr(1, name)",
    "str_format_walk": "'{0.__class__}'.format(1)",
    "str_format_map_walk": "'{x.__class__.__mro__}'.format_map({'x': 1})",
    "str_format_by_class": "str.format('{0.__class__}', 1)",
    "type_three_args": "type('X', (), {})",
    "class_statement": "class X:\n    pass",
    "generator_frame_static": "g = (x for x in [1])\nf = g.gi_frame.f_globals",
    "generator_frame_dynamic": "g = (x for x in [1])\nf = getattr(g, 'gi' + '_frame')",
    "json_codecs": "import json\njson.codecs.open('{canary}', 'w')",
    "from_json_import_codecs": "from json import codecs",
    "from_json_import_decoder": "from json import decoder",
    "datetime_sys": "import datetime\ndatetime.sys",
    "decimal_context": "import decimal\ndecimal.getcontext().prec = 10 ** 9",
    "json_cls": "import json\njson.dumps(1, cls=str)",
    "star_import": "from math import *",
    "lambda_globals": "g = (lambda: 0).__globals__",
    "function_code": "def f():\n    pass\nc = getattr(f, 'func_code')",
    "globals": "g = globals()",
    "locals": "l = locals()",
    "vars": "v = vars()",
    "builtins_name": "b = __builtins__",
    "mro": "m = int.mro()",
    "object": "o = object()",
    "module_write": "import math\nmath.pi = 3",
    "attribute_write": "d = date(2024, 1, 1)\nd.year = 1",
    "setattr": "setattr(date, 'today', 1)",
    "caught_violation": "try:\n    import os\nexcept Exception:\n    pass\nok = True",
    "env_var": "import os\nos.environ['SANDBOX_CANARY'] = '1'",
    "print_to_file": "print('x', file=1)",
}


@pytest.mark.parametrize("name", ESCAPES)
def test_escape_is_refused(engine: SandboxedScriptEngine, canary: Path, name: str):
    task = FakeTask({"applicant": "A"})
    with pytest.raises(SandboxViolation) as caught:
        engine.execute(task, ESCAPES[name].replace("{canary}", str(canary)))
    assert caught.value.details["element_id"] == "check_fee"
    assert task.data == {"applicant": "A"}


def test_system_exit_is_not_available(engine: SandboxedScriptEngine):
    with pytest.raises(ScriptError, match="NameError"):
        engine.execute(FakeTask(), "raise SystemExit(1)")


RESOURCE_BOMBS = {
    "big_power": "x = 10 ** 10 ** 10",
    "big_pow_builtin": "x = pow(10, 10 ** 10)",
    "big_power_inplace": "x = 10\nx **= 10 ** 6",
    "big_shift": "x = 1 << 10 ** 10",
    "big_int_product": "x = 7 ** 9000\ny = x * x * x * x",
    "big_string_repeat": "s = 'a' * 10 ** 10",
    "big_list_repeat": "s = [0] * 10 ** 10",
    "string_doubling": "s = 'a' * 10 ** 7\nwhile True:\n    s = s + s",
    "fstring_doubling": "s = 'a' * 10 ** 7\nwhile True:\n    s = f'{s}{s}'",
    "list_extend_doubling": "s = [0] * 10 ** 7\nwhile True:\n    s.extend(s)",
    "slice_doubling": "s = [0] * 10 ** 7\nwhile True:\n    s[len(s):] = s",
    "ljust": "s = 'x'.ljust(10 ** 10)",
    "join": "s = ','.join(['a' * 1000] * 100000)",
    "replace": "s = ('a' * 10000).replace('a', 'b' * 10000)",
    "str_format_width": "s = '{:>1000000000}'.format(1)",
    "fstring_width": "s = f'{1:>1000000000}'",
    "percent_width": "s = '%1000000000d' % 1",
    "to_bytes": "b = (1).to_bytes(10 ** 10, 'big')",
    "range": "r = range(10 ** 9)",
    "factorial": "import math\nx = math.factorial(10 ** 6)",
    "round": "x = round(5, -10 ** 7)",
    "sum_of_lists": "x = sum([[0]] * 10 ** 6, [])",
    "self_similar_data": "a = [1]\nfor i in range(64):\n    a = [a, a]",
    "decimal_to_int": "x = int(Decimal('1e1000000'))",
    "decimal_floor": "import math\nx = math.floor(Decimal('1e999999'))",
    "decimal_fstring": "s = f'{Decimal(\"1e999999999\"):f}'",
    "decimal_percent": "s = '%d' % Decimal('1e999999')",
    "int_to_bytes_by_class": "b = int.to_bytes(1, 10 ** 10, 'big')",
    "list_extend_by_class": "s = [0] * 10 ** 7\nlist.extend(s, s)",
    "json_indent": "import json\ns = json.dumps([[[1]]], indent=10 ** 9)",
}


@pytest.mark.parametrize("name", RESOURCE_BOMBS)
def test_resource_bomb_is_refused(env: RestrictedEnvironment, name: str):
    started = time.monotonic()
    with pytest.raises(SandboxViolation):
        env.execute(RESOURCE_BOMBS[name], {})
    assert time.monotonic() - started < 3 * LIMIT + 1  # refused up front, or stopped by the time limit


RUNAWAYS = {
    "while_true": "while True:\n    pass",
    "infinite_comprehension": "x = [x for x in iter(int, 1)]",
    "infinite_list_call": "x = list(iter(int, 1))",
    "nested_comprehension": "x = sum(1 for a in range(100000) for b in range(100000))",
    "generator": "def forever():\n    while True:\n        yield 1\nx = max(forever())",
    "exponential_recursion": "def f(n):\n    return 1 if n > 40 else f(n + 1) + f(n + 1)\nx = f(0)",
    "caught_timeout": "try:\n    while True:\n        pass\nexcept Exception:\n    pass\ndone = True",
    "retry_after_timeout": (
        "for i in range(100):\n    try:\n        while True:\n            pass\n"
        "    except Exception:\n        pass"
    ),
    "sorted_key": "x = sorted(range(100000), key=lambda v: [w for w in range(100000)])",
}


@pytest.mark.parametrize("name", RUNAWAYS)
def test_runaway_code_hits_the_time_limit(env: RestrictedEnvironment, name: str):
    started = time.monotonic()
    with pytest.raises(SandboxViolation, match=f"time limit of {LIMIT:g} s"):
        env.execute(RUNAWAYS[name], {})
    assert time.monotonic() - started < 3 * LIMIT


def test_time_limit_applies_to_expressions(env: RestrictedEnvironment):
    with pytest.raises(SandboxViolation, match="time limit"):
        env.evaluate("[1 for x in iter(int, 1)]", {})


def test_time_limit_works_outside_the_main_thread(env: RestrictedEnvironment):
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            env.execute("while True:\n    pass", {})
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert isinstance(outcome[0], SandboxViolation)
    assert time.monotonic() - started < 3 * LIMIT


def test_shared_structures_print_and_fail_briefly(env: RestrictedEnvironment):
    build = "a = [1]\nfor i in range(64):\n    a = [a, a]\n"
    context: dict[str, Any] = {}
    env.execute(build + "print(a)\nshown = len(printed)\ndel a", context)
    assert context["shown"] < 10_000
    with pytest.raises(ScriptError) as caught:
        env.execute(build + "raise ValueError(a)", {})
    assert len(caught.value.message) < 1000


def test_recursion_bomb_is_a_violation(engine: SandboxedScriptEngine):
    with pytest.raises(SandboxViolation, match="recursion depth") as caught:
        engine.execute(FakeTask(), "def f(n):\n    return f(n + 1)\nf(0)")
    assert caught.value.details["line"] == 2


# ---------------------------------------------------------------------------------------------- errors
def test_runtime_error_names_task_and_line(engine: SandboxedScriptEngine):
    with pytest.raises(ScriptError) as caught:
        engine.execute(FakeTask({"fee": 1}), "a = 1\nb = 2\nc = fee / 0")
    error = caught.value
    assert type(error) is ScriptError
    assert error.message == "Script of task 'check_fee' failed on line 3: ZeroDivisionError: division by zero"
    assert error.details == {"element_id": "check_fee", "line": 3}


def test_error_inside_a_function_reports_its_line(engine: SandboxedScriptEngine):
    with pytest.raises(ScriptError) as caught:
        engine.execute(FakeTask(), "def f():\n    return missing\n\nf()")
    assert "on line 2: NameError: name 'missing' is not defined" in caught.value.message


def test_expression_error_names_the_expression(engine: SandboxedScriptEngine):
    with pytest.raises(ScriptError) as caught:
        engine.evaluate(FakeTask(name="gw_fee"), "fee > limit")
    assert caught.value.message == (
        "Expression 'fee > limit' of task 'gw_fee' failed: NameError: name 'fee' is not defined"
    )
    assert caught.value.details["element_id"] == "gw_fee"


def test_policy_error_keeps_restrictedpython_message(engine: SandboxedScriptEngine):
    with pytest.raises(SandboxViolation) as caught:
        engine.execute(FakeTask(), "x = 1\ny = x.__class__")
    message = caught.value.message
    assert 'Line 2: "__class__" is an invalid attribute name because it starts with "_".' in message
    assert caught.value.details == {"element_id": "check_fee", "line": 2}


def test_syntax_error_is_a_script_error(engine: SandboxedScriptEngine):
    with pytest.raises(ScriptSyntaxError) as caught:
        engine.execute(FakeTask(), "x = (")
    assert isinstance(caught.value, ScriptError) and not isinstance(caught.value, SandboxViolation)
    assert "syntax error" in caught.value.message


def test_time_limit_message(env: RestrictedEnvironment):
    with pytest.raises(SandboxViolation, match=r"Script exceeded its time limit of 0\.2 s"):
        env.execute("while True:\n    pass", {})


# ------------------------------------------------------------------------------------ validate / service
def test_validate(engine: SandboxedScriptEngine):
    engine.validate("amount > 5 and status in ('a', 'b')")
    with pytest.raises(ScriptSyntaxError):
        engine.validate("amount >")
    with pytest.raises(SyntaxError):  # SpiffWorkflow's DMN engine relies on this
        engine.validate("< 5")
    with pytest.raises(SandboxViolation):
        engine.validate("x.__dict__")


def test_call_service_delegates(env: RestrictedEnvironment):
    seen = []

    def caller(task: Any, name: str, params: dict[str, Any]) -> str:
        seen.append((task.task_spec.name, name, params))
        return '{"ok": true}'

    engine = SandboxedScriptEngine(env, service_caller=caller)
    task = FakeTask(name="pay")
    assert (
        engine.call_service(task, operation_name="payment.create", operation_params={"a": 1})
        == '{"ok": true}'
    )
    assert seen == [("pay", "payment.create", {"a": 1})]


def test_call_service_without_caller(engine: SandboxedScriptEngine):
    with pytest.raises(UnknownOperatorError):
        engine.call_service(FakeTask(), operation_name="x.y", operation_params={})


def test_call_service_failure_becomes_handler_error(env: RestrictedEnvironment):
    def caller(task: Any, name: str, params: dict[str, Any]) -> str:
        raise ValueError("boom")

    with pytest.raises(HandlerError, match="boom"):
        SandboxedScriptEngine(env, service_caller=caller).call_service(FakeTask(), "x.y", {})


def test_environment_refuses_service_calls(env: RestrictedEnvironment):
    with pytest.raises(NotImplementedError):
        env.call_service({}, operation_name="x")


# ------------------------------------------------------------------------ direct environment / caching
def test_environment_evaluate_is_restricted(env: RestrictedEnvironment):
    """SpiffWorkflow evaluates message correlations with ``environment.evaluate`` directly."""
    assert env.evaluate("payload['business_key']", {"payload": {"business_key": "K"}}) == "K"
    with pytest.raises(SandboxViolation):
        env.evaluate("getattr(payload, '__class__')", {"payload": {}})
    with pytest.raises(SandboxViolation):
        env.evaluate("__import__('os')", {})


def test_same_source_is_compiled_once(monkeypatch: pytest.MonkeyPatch):
    calls = []
    real = sandbox_policy.compile_restricted_eval

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(sandbox_policy, "compile_restricted_eval", counting)
    env = RestrictedEnvironment()
    for amount in (1, 5, 10):
        env.evaluate("amount > 3", {"amount": amount})
    env.evaluate("amount > 4", {"amount": 1})
    assert len(calls) == 2
    info = env.compile_cache_info()
    assert (info.hits, info.misses) == (2, 2)


def test_check_script_reports_problems_without_running(canary: Path):
    assert check_script("x = 1\ny = x + 1") == []
    assert check_script("a > 1", "eval") == []
    problems = check_script(f"import os\nos.system('touch {canary}')\nz = open('f')\nfrom json import codecs")
    assert sorted(problems) == [
        "Line 1: Import of module 'os' is not allowed",
        "Line 3: 'open' is not allowed in scripts",
        "Line 4: Import of 'codecs' from module 'json' is not allowed",
    ]
    assert check_script("x.__class__")[0].startswith('Line 1: "__class__" is an invalid attribute name')
    assert check_script("x = (")[0].startswith("Line 1: SyntaxError")


# ------------------------------------------------------------------------------- SpiffWorkflow wiring
FEE_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="fee" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:scriptTask id="compute_fee">
      <bpmn:script>fee = Decimal("50000") * copies</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:exclusiveGateway id="gw" default="to_small" />
    <bpmn:scriptTask id="big"><bpmn:script>route = "big"</bpmn:script></bpmn:scriptTask>
    <bpmn:scriptTask id="small"><bpmn:script>route = "small"</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end_big" />
    <bpmn:endEvent id="end_small" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute_fee" />
    <bpmn:sequenceFlow id="f2" sourceRef="compute_fee" targetRef="gw" />
    <bpmn:sequenceFlow id="to_big" sourceRef="gw" targetRef="big">
      <bpmn:conditionExpression>fee &gt; 100000</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_small" sourceRef="gw" targetRef="small" />
    <bpmn:sequenceFlow id="f5" sourceRef="big" targetRef="end_big" />
    <bpmn:sequenceFlow id="f6" sourceRef="small" targetRef="end_small" />
  </bpmn:process>
</bpmn:definitions>
"""


def _run_fee_process(engine: SandboxedScriptEngine, copies: Any, script: str | None = None) -> BpmnWorkflow:
    parser = BpmnParser()
    xml = FEE_PROCESS if script is None else FEE_PROCESS.replace('fee = Decimal("50000") * copies', script)
    parser.add_bpmn_str(xml.encode())
    workflow = BpmnWorkflow(parser.get_spec("fee"), script_engine=engine)
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data["copies"] = copies
    workflow.do_engine_steps()
    return workflow


@pytest.mark.parametrize(("copies", "route"), [(1, "small"), (3, "big")])
def test_spiffworkflow_runs_scripts_and_conditions_in_the_sandbox(
    engine: SandboxedScriptEngine, copies: int, route: str
):
    workflow = _run_fee_process(engine, copies)
    assert workflow.is_completed()
    assert workflow.last_task.data["route"] == route
    assert workflow.last_task.data["fee"] == Decimal(50000) * copies


def test_spiffworkflow_surfaces_sandbox_violations(engine: SandboxedScriptEngine, canary: Path):
    with pytest.raises(SandboxViolation) as caught:
        _run_fee_process(engine, 1, f"import os\nos.system('touch {canary}')")
    assert caught.value.details["element_id"] == "compute_fee"
