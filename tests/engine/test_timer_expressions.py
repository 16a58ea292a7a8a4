"""Timer expressions: ISO literals with or without quotes, sandbox expressions with the working calendar,
due times by the engine's clock in Viet Nam time, lint messages, and stored specs that keep our timers.

The fake clock stands in March 2026, months away from the machine's clock, so a timer that compared with
the system clock would fire at once or never.  On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest

from dossiers import store as dossier_store
from dossiers.timer_functions import timer_functions
from engine import timer_specs
from engine.bpmn import load_documents
from engine.bpmn_lint import lint_documents
from engine.errors import DefinitionError, ScriptError
from engine.sandbox import check_script

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CODE = "000.00.01.H53-260302-0001"


def vn(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VN)


def timer_process(kind: str, expression: str, key: str = "timer_test") -> tuple[str, bytes]:
    """A process whose task 'handle' has a non-interrupting boundary timer leading to the task 'remind'."""
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                  id="Definitions_{key}" targetNamespace="http://motcua.gov.vn/bpmn">
  <bpmn:process id="{key}" name="Hẹn giờ" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:userTask id="handle" name="Xử lý hồ sơ" />
    <bpmn:boundaryEvent id="remind_timer" name="Đến hạn nhắc" attachedToRef="handle" cancelActivity="false">
      <bpmn:timerEventDefinition id="TED_remind">
        <bpmn:{kind} xsi:type="bpmn:tFormalExpression">{escape(expression)}</bpmn:{kind}>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:userTask id="remind" name="Nhắc xử lý" />
    <bpmn:endEvent id="end" />
    <bpmn:endEvent id="end_remind" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="handle" />
    <bpmn:sequenceFlow id="f2" sourceRef="handle" targetRef="end" />
    <bpmn:sequenceFlow id="f3" sourceRef="remind_timer" targetRef="remind" />
    <bpmn:sequenceFlow id="f4" sourceRef="remind" targetRef="end_remind" />
  </bpmn:process>
</bpmn:definitions>
"""
    return (f"{key}.bpmn", xml.encode())


@pytest.fixture
def calendar_engine(make_engine, clock):
    """An engine whose timers know the working calendar (as DossierService registers it)."""
    clock.current = vn(2026, 3, 2, 9, 0)  # Monday
    engine = make_engine()
    engine.add_timer_functions(timer_functions)
    return engine


def start(engine, kind: str, expression: str, data: dict | None = None, business_key: str | None = None):
    engine.deploy([timer_process(kind, expression)])
    return engine.start("timer_test", data or {}, business_key=business_key)


def due_of(view) -> datetime:
    [timer] = view["timers"]
    assert timer["element_id"] == "remind_timer"
    return timer["due_at"].astimezone(VN)


def tasks_of(engine, view) -> list[str]:
    return sorted(t["element_id"] for t in engine.show(view["id"])["tasks"])


# -- ISO literals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expression", "due"),
    [
        ("timeDuration", "PT4H", vn(2026, 3, 2, 13, 0)),
        ("timeDuration", '"PT4H"', vn(2026, 3, 2, 13, 0)),
        ("timeDuration", "  P3D\n", vn(2026, 3, 5, 9, 0)),
        ("timeDuration", "'P1DT30M'", vn(2026, 3, 3, 9, 30)),
        ("timeDate", "2026-03-05T09:00:00+07:00", vn(2026, 3, 5, 9, 0)),
        ("timeDate", "'2026-03-05T02:00:00Z'", vn(2026, 3, 5, 9, 0)),
        ("timeDate", '"2026-03-05"', vn(2026, 3, 5, 0, 0)),
    ],
)
def test_iso_literals_with_or_without_quotes(calendar_engine, kind, expression, due):
    assert due_of(start(calendar_engine, kind, expression)) == due


@pytest.mark.parametrize(
    "expression",
    ["2026-03-05T09:00:00", "'2026-03-05T09:00:00'", "datetime(2026, 3, 5, 9, 0)"],
)
def test_naive_datetimes_are_vietnam_time(calendar_engine, expression):
    due = due_of(start(calendar_engine, "timeDate", expression))
    assert due.astimezone(UTC) == datetime(2026, 3, 5, 2, 0, tzinfo=UTC)


def test_python_expressions_see_task_data_and_now(calendar_engine):
    view = start(calendar_engine, "timeDuration", "timedelta(hours=hours) ", {"hours": 2})
    assert due_of(view) == vn(2026, 3, 2, 11, 0)
    view = start(calendar_engine, "timeDate", "now() + timedelta(days=1)")
    assert due_of(view) == vn(2026, 3, 3, 9, 0)
    view = start(calendar_engine, "timeDuration", "deadline", {"deadline": "PT30M"})
    assert due_of(view) == vn(2026, 3, 2, 9, 30)


# -- working time -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created", "due"),
    [
        # Friday 15:00-17:00 is 2 hours; the weekend does not count; Monday 07:30 + 2 h.
        (vn(2026, 3, 6, 15, 0), vn(2026, 3, 9, 9, 30)),
        # 10:30-11:30, the lunch break does not count, 13:00-16:00.
        (vn(2026, 3, 6, 10, 30), vn(2026, 3, 6, 16, 0)),
        # Monday 27/4/2026 is the day off for Hùng Kings' day (Sunday 26/4): Tuesday.
        (vn(2026, 4, 24, 15, 0), vn(2026, 4, 28, 9, 30)),
        # Wednesday 29/4, then 30/4 and 1/5 are holidays and a weekend follows: Monday 4/5.
        (vn(2026, 4, 29, 15, 0), vn(2026, 5, 4, 9, 30)),
    ],
)
def test_working_hours_after_the_task_was_created(calendar_engine, clock, created, due):
    clock.current = created
    assert due_of(start(calendar_engine, "timeDuration", "working_hours(4)")) == due


def test_working_time_honours_the_admins_days_off(calendar_engine, clock):
    with calendar_engine.store.unit_of_work() as uow:
        dossier_store.set_calendar_day(
            uow.conn,
            {
                "day": date(2026, 3, 9),
                "working": False,
                "note": "Nghỉ bù theo thông báo",
                "created_by": "admin",
                "created_at": clock.now(),
            },
        )
    clock.current = vn(2026, 3, 6, 15, 0)
    assert due_of(start(calendar_engine, "timeDuration", "working_hours(4)")) == vn(2026, 3, 10, 9, 30)
    assert due_of(start(calendar_engine, "timeDuration", "working_days(1)")) == vn(2026, 3, 10, 15, 0)


def _dossier(engine, clock, due_at: datetime | None) -> None:
    """A dossier row (and its procedure: 3 working days online) whose code is the business key."""
    record = {
        "code": "1.000001",
        "name": "Thủ tục thử",
        "channels": [{"kind": "online", "processing_time": 3, "unit": "working_days"}],
    }
    with engine.store.unit_of_work() as uow:
        dossier_store.upsert_procedure(
            uow.conn,
            {
                "code": "1.000001",
                "name": "Thủ tục thử",
                "level": 3,
                "bpmn": "timer_test",
                "agency_code": "000.00.01.H53",
                "sector": "Thử nghiệm",
                "decree_class": "mot_phan",
                "record": json.dumps(record, ensure_ascii=False),
                "updated_at": clock.now(),
            },
        )
        dossier_store.insert_dossier(
            uow.conn,
            {
                "code": CODE,
                "procedure_code": "1.000001",
                "level": 3,
                "agency_code": "000.00.01.H53",
                "owner": "citizen-1",
                "applicant": {"name": "Nguyễn Văn An"},
                "channel": 2,
                "status": 2 if due_at else 1,
                "submitted_at": clock.now(),
                "received_at": clock.now() if due_at else None,
                "due_at": due_at,
                "updated_at": clock.now(),
            },
        )


def test_a_date_working_days_before_the_dossiers_due_date(calendar_engine, clock):
    # Due Monday 4/5/2026 17:00; 1/5 and 30/4 are holidays: two working days before is Tuesday 28/4.
    _dossier(calendar_engine, clock, vn(2026, 5, 4, 17, 0))
    view = start(calendar_engine, "timeDate", "due_date() - working_days(2)", business_key=CODE)
    assert due_of(view) == vn(2026, 4, 28, 17, 0)
    view = start(calendar_engine, "timeDate", "due_date() - working_hours(1)", business_key=CODE)
    assert due_of(view) == vn(2026, 5, 4, 16, 0)


def test_due_date_of_a_dossier_not_received_yet_counts_from_now(calendar_engine, clock):
    # Received now (Monday 2/3 09:00), 3 working days: due Thursday 5/3 17:00; two working days before.
    _dossier(calendar_engine, clock, None)
    view = start(calendar_engine, "timeDate", "due_date() - working_days(2)", business_key=CODE)
    assert due_of(view) == vn(2026, 3, 3, 17, 0)


# -- the engine fires, by its clock ---------------------------------------------------------------------


def test_a_date_timer_fires_only_when_the_engine_fires_it(calendar_engine, make_engine):
    # 5/3/2026 is long past by the machine's clock: SpiffWorkflow alone would fire it at once.
    view = start(calendar_engine, "timeDate", "2026-03-05T09:00:00+07:00")
    assert tasks_of(calendar_engine, view) == ["handle"]
    assert calendar_engine.fire_due_timers(now=vn(2026, 3, 5, 8, 59)) == []
    assert tasks_of(make_engine(), view) == ["handle"]
    assert [t["element_id"] for t in make_engine().show(view["id"])["timers"]] == ["remind_timer"]

    fired = make_engine().fire_due_timers(now=vn(2026, 3, 5, 9, 0))
    assert [(f["element_id"], f["outcome"]) for f in fired] == [("remind_timer", "fired")]
    assert tasks_of(calendar_engine, view) == ["handle", "remind"]
    assert calendar_engine.show(view["id"])["timers"] == []


def test_a_duration_timer_fires_by_the_engine_clock_not_the_machines(calendar_engine, clock):
    view = start(calendar_engine, "timeDuration", "working_hours(4)")
    assert due_of(view) == vn(2026, 3, 2, 14, 30)
    clock.current = vn(2026, 3, 2, 14, 0)
    assert calendar_engine.fire_due_timers() == []
    clock.current = vn(2026, 3, 2, 14, 30)
    assert [f["outcome"] for f in calendar_engine.fire_due_timers()] == ["fired"]
    assert tasks_of(calendar_engine, view) == ["handle", "remind"]


# -- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expression", "data", "message"),
    [
        (
            "timeDuration",
            "deadline",
            {"deadline": "P3X"},
            "Timer 'remind_timer' (timeDuration 'deadline'): 'P3X' is not an ISO 8601 duration",
        ),
        ("timeDuration", "42", {}, "the expression gave int 42, but a timeDuration needs"),
        ("timeDate", "working_days(2)", {}, "gave WorkingTime working_days(2), but a timeDate needs"),
        ("timeDate", "when", {"when": "2026-13-01"}, "'2026-13-01' is not an ISO 8601 date or date-time"),
        ("timeDuration", "no_such_variable", {}, "NameError"),
        ("timeDate", "due_date()", {}, "due_date() needs the instance of a dossier"),
        ("timeDuration", "working_hours(-1)", {}, "working_hours(n) needs a number from 0 to 16000"),
        ("timeDuration", "working_days(10**9)", {}, "working_days(n) needs a whole number from 0 to 2000"),
        ("timeDuration", "working_days(1.5)", {}, "working_days(n) needs a whole number"),
    ],
)
def test_bad_expressions_fail_naming_element_and_expression(calendar_engine, kind, expression, data, message):
    calendar_engine.deploy([timer_process(kind, expression)])  # valid as written: it fails when evaluated
    with pytest.raises(ScriptError) as caught:
        calendar_engine.start("timer_test", data)
    assert message in caught.value.message
    assert caught.value.details.get("element_id") == "remind_timer"


def test_without_a_calendar_working_time_is_refused_clearly(make_engine, clock):
    clock.current = vn(2026, 3, 2, 9, 0)
    engine = make_engine()
    with pytest.raises(ScriptError, match=r"working_hours\(\) needs a working calendar, and no working"):
        start(engine, "timeDuration", "working_hours(4)")
    assert due_of(start(engine, "timeDuration", "PT1H")) == vn(2026, 3, 2, 10, 0)


# -- lint and deploy ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expression", "message"),
    [
        (
            "timeDuration",
            "P3X",
            "Timer 'remind_timer': 'P3X' is not an ISO 8601 duration (e.g. P3D, PT4H) nor a valid expression",
        ),
        ("timeDuration", "PT", "Timer 'remind_timer': 'PT' is not an ISO 8601 duration"),
        ("timeDuration", "2026-03-05", "'2026-03-05' is not an ISO 8601 duration"),
        ("timeDate", "2026-13-01", "Timer 'remind_timer': '2026-13-01' is not an ISO 8601 date or date-time"),
        ("timeDate", "PT4H", "'PT4H' is not an ISO 8601 date or date-time"),
        ("timeDate", '"tomorrow"', "'\"tomorrow\"' is not an ISO 8601 date or date-time"),
        ("timeCycle", "R3/PX", "'R3/PX' is not an ISO 8601 recurring interval (e.g. R3/PT1H)"),
        ("timeDuration", "working_hours(4", "is not an ISO 8601 duration (e.g. P3D, PT4H) nor a valid expr"),
        ("timeDuration", "__import__('os')", "nor a valid expression"),
        ("timeDuration", "  ", "the timeDuration expression is empty"),
    ],
)
def test_lint_names_the_timer_and_deploy_refuses(make_engine, kind, expression, message):
    document = timer_process(kind, expression)
    problems = lint_documents([document], check_expression=check_script)
    assert [(p.element_id, message in p.message) for p in problems] == [("remind_timer", True)], problems
    with pytest.raises(DefinitionError) as caught:
        load_documents([document])
    assert message in caught.value.message and caught.value.element_id == "remind_timer"
    engine = make_engine()
    assert [message in p["message"] for p in engine.lint([document])] == [True]
    with pytest.raises(DefinitionError):
        engine.deploy([document])


@pytest.mark.parametrize(
    ("kind", "expression"),
    [
        ("timeDuration", "PT4H"),
        ("timeDuration", "'P3D'"),
        ("timeDuration", "working_hours(4)"),
        ("timeDate", "2026-03-05T09:00:00+07:00"),
        ("timeDate", "due_date() - working_days(2)"),
        ("timeCycle", "R3/PT1H"),
        ("timeCycle", '"R/PT10M"'),
    ],
)
def test_lint_accepts_literals_and_expressions(kind, expression):
    assert lint_documents([timer_process(kind, expression)], check_expression=check_script) == []


# -- stored specs -----------------------------------------------------------------------------------------


def test_stored_specs_restore_to_our_timers(calendar_engine, make_engine, clock):
    [deployed] = calendar_engine.deploy([timer_process("timeDate", "2026-03-05T09:00:00+07:00")])
    view = calendar_engine.start("timer_test", {})
    # Another process (a new engine on the same database) reads the stored spec.
    other = make_engine()
    with other.store.unit_of_work(write=False) as uow:
        spec, _ = other.library.specs(uow, deployed["id"])
    definition = spec.task_specs["remind_timer"].event_definition
    assert type(definition) is timer_specs.TimeDateEventDefinition
    assert type(definition).__name__ == "TimeDateEventDefinition"
    # The restored instance keeps waiting by the engine's clock, and fires when told.
    assert other.fire_due_timers(now=vn(2026, 3, 4, 9, 0)) == []
    assert [f["outcome"] for f in make_engine().fire_due_timers(now=vn(2026, 3, 5, 9, 1))] == ["fired"]
    assert tasks_of(make_engine(), view) == ["handle", "remind"]


def test_parsed_specs_use_our_timers_everywhere():
    [process] = load_documents([timer_process("timeCycle", "R2/PT1H")])
    definition = process.spec.task_specs["remind_timer"].event_definition
    assert type(definition) is timer_specs.CycleTimerEventDefinition
