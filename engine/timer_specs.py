"""Timer events whose due time the engine computes: by its own clock, in Viet Nam time, with the calendar.

SpiffWorkflow's timers evaluate their expression as Python and compare the result with the system clock
on every refresh, so a test clock (or a corrected one) never decides when they fire.  Ours compute the
due time once, when the timer starts waiting, through the script engine (``EngineScriptEngine``), and
then only report the ``event_fired`` flag that the engine sets when it fires them
(``Engine.fire_due_timers``).

A timer expression is one of:

- a bare ISO 8601 literal of the timer's kind: ``PT4H``, ``P3D`` (timeDuration), ``2026-03-05T09:00:00+07:00``
  (timeDate), ``R3/PT1H`` (timeCycle); or the same text as a Python string (``"PT4H"``);
- a Python expression, run in the sandbox with the task data and the timer functions: ``now()``,
  ``working_days(n)``, ``working_hours(n)``, ``due_date()`` (the last three come from the providers given
  to ``Engine.add_timer_functions``).  It may give an ISO string, a ``datetime`` or ``date`` (timeDate),
  a ``timedelta`` or a :class:`WorkingTime` (timeDuration: that much time after now).
  ``due_date() - working_days(2)`` is a datetime counted by the working calendar.

Naive datetimes (in literals and results) are Viet Nam time, never the machine's zone.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition as SpiffCycleTimer,
)
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    DurationTimerEventDefinition as SpiffDurationTimer,
)
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    TimeDateEventDefinition as SpiffTimeDate,
)
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from .errors import ScriptError
from .projection import DUE_AT, VN_TZ

DURATION, DATE, CYCLE = "timeDuration", "timeDate", "timeCycle"
KINDS = (DURATION, DATE, CYCLE)

# What a bare word must look like to be taken for an ISO literal (and reported when it does not parse)
# rather than evaluated as Python: ``P3X`` and ``2026-13-01`` are valid Python, but nobody means them so.
_ISO_SHAPES = (
    re.compile(r"P[0-9T][0-9A-Z.,]*"),  # durations: P3D, PT4H, P1Y2M10DT2H30M
    re.compile(r"\d{4}-[0-9W][0-9A-Za-z:.,+\-]*"),  # dates and date-times: 2026-03-05T09:00:00+07:00
    re.compile(r"R\d*/\S*"),  # recurring intervals: R3/PT1H, R/2026-03-05T09:00:00Z/P1D
)
_WHAT = {
    DURATION: "an ISO 8601 duration (e.g. P3D, PT4H)",
    DATE: "an ISO 8601 date or date-time (e.g. 2026-03-05T09:00:00+07:00)",
    CYCLE: "an ISO 8601 recurring interval (e.g. R3/PT1H)",
}
_RESULTS = {
    DURATION: "an ISO 8601 duration string, a timedelta or working time (working_days(n), working_hours(n))",
    DATE: "an ISO 8601 date-time string, a datetime or a date",
    CYCLE: "an ISO 8601 recurring interval string",
}


class WorkingTime:
    """An amount of working time, counted by a working calendar.

    ``moment + span`` and ``moment - span`` give the moment that much working time after or before
    ``moment`` (a naive moment is Viet Nam time).

    Args:
        label: how the amount was written, e.g. ``working_days(2)``, for messages.
        shift: ``shift(moment, direction)`` returns the moment moved by the amount, forwards (1) or
            backwards (-1); ``moment`` is aware.
    """

    def __init__(self, label: str, shift: Callable[[datetime, int], datetime]) -> None:
        self.label = label
        self._shift = shift

    def after(self, moment: datetime) -> datetime:
        """Return the moment this much working time after ``moment``."""
        return self._shift(as_vietnam_time(moment), 1)

    def before(self, moment: datetime) -> datetime:
        """Return the moment this much working time before ``moment``."""
        return self._shift(as_vietnam_time(moment), -1)

    def __add__(self, other: Any) -> Any:
        return self.after(other) if isinstance(other, datetime) else NotImplemented

    __radd__ = __add__

    def __rsub__(self, other: Any) -> Any:
        return self.before(other) if isinstance(other, datetime) else NotImplemented

    def __repr__(self) -> str:
        return self.label


def as_vietnam_time(moment: datetime) -> datetime:
    """Return ``moment`` in Asia/Ho_Chi_Minh; a naive moment is taken to be Viet Nam time already."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=VN_TZ)
    return moment.astimezone(VN_TZ)


def default_functions(now: datetime) -> dict[str, Callable[..., Any]]:
    """Return the timer functions every engine offers: ``now()``, and calendar ones that say none is set."""

    def missing(name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise ScriptError(
                f"{name}() needs a working calendar, and no working calendar is configured "
                "(Engine.add_timer_functions)"
            )

        return refuse

    local = as_vietnam_time(now)
    functions: dict[str, Callable[..., Any]] = {
        name: missing(name) for name in ("working_days", "working_hours", "due_date")
    }
    functions["now"] = lambda: local
    return functions


# -- literals -----------------------------------------------------------------------------------------


def looks_iso(text: str) -> bool:
    """Tell whether a bare word is shaped like an ISO 8601 duration, date(-time) or recurring interval."""
    return any(shape.fullmatch(text) for shape in _ISO_SHAPES)


def literal_text(expression: str) -> str | None:
    """Return the ISO text of a bare or quoted literal; None when ``expression`` is Python to evaluate."""
    text = (expression or "").strip()
    if looks_iso(text):
        return text
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if isinstance(tree.body, ast.Constant) and isinstance(tree.body.value, str):
        return tree.body.value.strip()
    return None


def parse_literal(kind: str, text: str) -> Any:
    """Parse ISO text of a timer kind: a duration dict, an aware datetime, or (cycles, start, duration).

    Raises:
        ValueError: ``text`` is not ISO 8601 of that kind.
    """
    try:
        if kind == DURATION:
            parsed = TimerEventDefinition.parse_iso_duration(text) if text.upper().startswith("P") else None
            if not parsed:
                raise ValueError(text)
            return parsed
        if kind == DATE:
            return as_vietnam_time(datetime.fromisoformat(text))
        return TimerEventDefinition.parse_iso_recurring_interval(text)
    except Exception as exc:  # SpiffWorkflow's parsers raise bare Exceptions, IndexError, AttributeError...
        raise ValueError(f"{text!r} is not {_WHAT[kind]}") from exc


def expression_problems(
    kind: str, element: str, expression: str | None, check_python: Callable[[str, str], list[str]] | None
) -> list[str]:
    """Return what is wrong with a timer expression, for the linter (empty when it is fine).

    Args:
        kind: ``timeDuration``, ``timeDate`` or ``timeCycle``.
        element: the timer event's id, for the messages.
        expression: the expression text.
        check_python: ``check(source, "eval")`` returns messages about a Python expression (the sandbox's
            ``check_script``); None accepts any Python expression.
    """
    text = (expression or "").strip()
    if not text:
        return [f"Timer '{element}': the {kind} expression is empty"]
    literal = literal_text(text)
    messages = [] if literal == text or check_python is None else list(map(str, check_python(text, "eval")))
    if messages:
        return [
            f"Timer '{element}': {text!r} is not {_WHAT[kind]} nor a valid expression: {message}"
            for message in messages
        ]
    if literal is None:
        return []
    try:
        parse_literal(kind, literal)
    except ValueError:
        tail = " nor a valid expression" if literal == text else ""
        return [f"Timer '{element}': {text!r} is not {_WHAT[kind]}{tail}"]
    return []


# -- evaluation ---------------------------------------------------------------------------------------


def evaluate_due(
    task: Any, kind: str, expression: str, now: datetime, evaluate: Callable[[str], Any]
) -> datetime:
    """Return when a timeDuration or timeDate timer is due, counted from ``now``.

    Args:
        task: the waiting timer task (for the element id in messages).
        kind: ``timeDuration`` or ``timeDate``.
        expression: the timer expression: a literal is used as is, anything else goes to ``evaluate``.
        now: the engine's current time.
        evaluate: runs a Python expression in the sandbox (with the task data and timer functions).

    Raises:
        ScriptError: the expression fails, or gives a value of the wrong type or an invalid ISO string
            (the message names the element and the expression).
        SandboxViolation: the expression breaks a sandbox rule.
    """
    element = getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name
    where = f"Timer '{element}' ({kind} {' '.join(str(expression).split())!r})"
    literal = literal_text(expression)
    try:
        value = literal if literal is not None else evaluate(expression)
    except ScriptError as exc:
        if exc.details.get("element_id"):
            raise  # the sandbox's own message names the element and the expression already
        # A timer function refused (e.g. no calendar, a negative amount): say where.
        raise type(exc)(f"{where}: {exc.message}", element_id=element, expression=expression) from exc
    try:
        return _due_from(kind, value, as_vietnam_time(now))
    except ValueError as exc:
        raise ScriptError(f"{where}: {exc}", element_id=element, expression=expression) from exc


def _due_from(kind: str, value: Any, now: datetime) -> datetime:
    if isinstance(value, str):
        parsed = parse_literal(kind, value.strip())
        if kind == DURATION:
            return now + TimerEventDefinition.get_timedelta_from_start(dict(parsed), now)
        return as_vietnam_time(parsed)
    if kind == DURATION and isinstance(value, timedelta | WorkingTime):
        due: datetime = now + value
        return due
    if kind == DATE and isinstance(value, datetime):
        return as_vietnam_time(value)
    if kind == DATE and isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=VN_TZ)
    raise ValueError(
        f"the expression gave {type(value).__name__} {value!r}, but a {kind} needs {_RESULTS[kind]}"
    )


def _due(my_task: Any, kind: str, expression: str) -> datetime:
    """Ask the workflow's script engine for the due time (the engine's clock and functions)."""
    engine = my_task.workflow.script_engine
    compute = getattr(engine, "timer_due_at", None)
    if compute is not None:
        due: datetime = compute(my_task, kind, expression)
        return due
    # A script engine that is not the engine's: plain evaluation by the system clock.
    now = datetime.now(UTC)
    return evaluate_due(my_task, kind, expression, now, lambda source: engine.evaluate(my_task, source))


class _EngineTimer:
    """Computes the due time once, when the timer starts waiting; fires only when the engine says so."""

    kind: ClassVar[str]
    expression: str

    def has_fired(self, my_task: Any) -> bool:
        if my_task._get_internal_data("event_value") is None:
            due = _due(my_task, self.kind, self.expression).astimezone(VN_TZ).isoformat()
            my_task._set_internal_data(event_value=due)
            my_task.internal_data[DUE_AT] = due
        return bool(my_task._get_internal_data("event_fired", False))


class TimeDateEventDefinition(_EngineTimer, SpiffTimeDate):
    """A timer due at a date and time (``timeDate``), fired by the engine."""

    kind = DATE


class DurationTimerEventDefinition(_EngineTimer, SpiffDurationTimer):
    """A timer due a duration after it starts waiting (``timeDuration``), fired by the engine."""

    kind = DURATION


class CycleTimerEventDefinition(SpiffCycleTimer):
    """SpiffWorkflow's cycle timer, whose expression may also be a bare ISO 8601 recurring interval.

    Its rounds are still scheduled by SpiffWorkflow (``runtime.align_timers`` moves them to the engine's
    clock).
    """

    def cycle_complete(self, my_task: Any) -> bool:
        if my_task._get_internal_data("event_value") is None:
            text = literal_text(self.expression)
            if text is None:
                text = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            element = getattr(my_task.task_spec, "bpmn_id", None) or my_task.task_spec.name
            if not isinstance(text, str):
                raise ScriptError(
                    f"Timer '{element}': expression {self.expression!r} gave {type(text).__name__}; "
                    f"a {CYCLE} needs {_RESULTS[CYCLE]}",
                    element_id=element,
                )
            try:
                cycles, start, duration = parse_literal(CYCLE, text.strip())
            except ValueError as exc:
                raise ScriptError(f"Timer '{element}': {exc}", element_id=element) from exc
            value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
            my_task._set_internal_data(event_value=value)
        ready: bool = super().cycle_complete(my_task)
        return ready


#: SpiffWorkflow's timer classes and ours, which keep the same names so that stored specs restore to ours.
REPLACED: dict[type, type] = {
    SpiffTimeDate: TimeDateEventDefinition,
    SpiffDurationTimer: DurationTimerEventDefinition,
    SpiffCycleTimer: CycleTimerEventDefinition,
}


def adopt_timers(spec: Any) -> None:
    """Make every timer event definition of a parsed process spec one of ours (in place)."""
    for task_spec in spec.task_specs.values():
        definition = getattr(task_spec, "event_definition", None)
        if definition is not None:
            _adopt(definition)


def _adopt(definition: Any) -> None:
    ours = REPLACED.get(type(definition))
    if ours is not None:
        definition.__class__ = ours
    elif isinstance(definition, MultipleEventDefinition):
        for inner in definition.event_definitions:
            _adopt(inner)
