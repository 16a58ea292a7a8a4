"""Failing service tasks and scripts: retries with back-off, incidents, and the admin's retry."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest

from engine.errors import DefinitionError, HandlerError, TaskStateError
from tests.engine.conftest import bpmn_file


def ready(view: dict, element_id: str) -> dict:
    [task] = [t for t in view["tasks"] if t["element_id"] == element_id]
    return task


def test_retryable_failures_back_off_then_succeed(engine, clock, calls):
    calls.plan = [HandlerError("gateway timeout", retryable=True), HandlerError("still down", retryable=True)]
    engine.deploy([bpmn_file("service_retry.bpmn")])
    view = engine.start("service_retry_test", {"dossier_code": "H1"})
    assert view["status"] == "running"
    [wake] = view["timers"]
    assert wake["kind"] == "retry" and wake["element_id"] == "call_remote"
    assert (wake["due_at"] - clock.now()).total_seconds() == pytest.approx(10, abs=1)
    # The parallel branch is not held up by the failing call.
    view = engine.complete_task(ready(view, "side_work")["id"], {})
    assert engine.fire_due_timers() == []

    clock.advance(seconds=11)
    assert [r["outcome"] for r in engine.fire_due_timers()] == ["fired"]
    [wake] = engine.show(view["id"])["timers"]
    assert (wake["due_at"] - clock.now()).total_seconds() == pytest.approx(20, abs=1)

    clock.advance(seconds=21)
    engine.fire_due_timers()
    view = engine.show(view["id"])
    assert view["timers"] == [] and view["incidents"] == []
    assert ready(view, "after")
    assert view["data"]["remote"] == {"ok": True, "attempt": 3, "key": f"{view['id']}:{wake['task_id']}"}
    assert [c[2].attempt for c in calls.seen] == [1, 2, 3]
    assert len({c[2].idempotency_key for c in calls.seen}) == 1
    assert [c[1] for c in calls.seen] == [{"dossier": "H1"}] * 3
    history = [h["action"] for h in view["history"]]
    assert history.count("retry_scheduled") == 2 and history.count("retry") == 2


def test_exhausted_retries_raise_an_incident_that_an_admin_retries(make_engine, clock, calls):
    engine = make_engine()
    calls.plan = [HandlerError("down", retryable=True)] * 3
    engine.deploy([bpmn_file("service_retry.bpmn")])
    view = engine.start("service_retry_test", {"dossier_code": "H2"})
    for seconds in (11, 21):
        clock.advance(seconds=seconds)
        engine.fire_due_timers()
    view = engine.show(view["id"])
    assert view["status"] == "incident"
    [incident] = view["incidents"]
    assert (incident["element_id"], incident["attempts"], incident["message"]) == ("call_remote", 3, "down")
    assert view["timers"] == []
    assert [i["instance_id"] for i in engine.incidents()] == [view["id"]]

    engine = make_engine()  # the admin's command runs in another process
    view = engine.retry_incidents(view["id"], actor="admin")
    assert view["status"] == "running" and engine.incidents(view["id"]) == []
    view = engine.complete_task(ready(view, "side_work")["id"], {})
    assert ready(view, "after")
    with pytest.raises(TaskStateError):
        engine.retry_incidents(view["id"])


def test_non_retryable_failure_is_an_incident_at_once(engine, calls):
    calls.plan = [HandlerError("dossier code rejected by the portal", retryable=False)]
    engine.deploy([bpmn_file("service_retry.bpmn")])
    view = engine.show(engine.start("service_retry_test", {"dossier_code": "H3"})["id"])
    assert view["status"] == "incident" and view["timers"] == []
    assert view["incidents"][0]["message"] == "dossier code rejected by the portal"
    assert view["incidents"][0]["kind"] == "handler_failed"


def test_unknown_operator_is_an_incident(engine):
    xml = bpmn_file("service_retry.bpmn")[1].replace(b'id="test.remote"', b'id="no.such.operator"')
    engine.deploy([("service_retry.bpmn", xml)])
    view = engine.show(engine.start("service_retry_test", {"dossier_code": "H4"})["id"])
    assert view["status"] == "incident"
    assert "no.such.operator" in view["incidents"][0]["message"]


def _script_process(script: str) -> tuple[str, bytes]:
    xml = bpmn_file("script_rules.bpmn")[1].decode()
    return ("script_rules.bpmn", xml.replace("exec(code)", escape(script)).encode())


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("import os\nos.system('touch /tmp/motcua-pwned')", "Import of module 'os' is not allowed"),
        ("x = ().__class__.__bases__[0].__subclasses__()", "invalid attribute name"),
        ("open('/etc/passwd').read()", "'open' is not allowed"),
        ("eval('1 + 1')", "Eval calls are not allowed"),
    ],
)
def test_deploy_refuses_a_script_breaking_the_rules_it_can_see(engine, script, message):
    with pytest.raises(DefinitionError) as caught:
        engine.deploy([_script_process(script)])
    assert caught.value.element_id == "run_script" and message in caught.value.message
    assert engine.definitions() == []


@pytest.mark.parametrize(
    "script",
    [
        # Rules only the running sandbox can enforce: a name built at run time, a loop that never ends.
        "x = getattr((), '__cl' + 'ass__')",
        "while True:\n    pass",
    ],
)
def test_script_breaking_the_rules_fails_its_task_and_keeps_the_users_input(engine, script):
    engine.deploy([_script_process(script)])
    view = engine.start("script_rules_test", {"applicant": "Nguyễn Văn A"})
    view = engine.complete_task(ready(view, "declare")["id"], {"so_ban": 2}, actor="citizen")
    view = engine.show(view["id"])
    assert view["status"] == "incident"
    [incident] = view["incidents"]
    assert incident["element_id"] == "run_script"
    assert incident["kind"] in ("sandbox_violation", "script_failed")
    assert incident["message"]
    assert view["tasks"] == []
    assert view["data"]["so_ban"] == 2 and view["data"]["applicant"] == "Nguyễn Văn A"
    assert [h["action"] for h in view["history"]] == ["started", "task_completed", "incident"]


def test_failed_script_changes_no_data(engine):
    engine.deploy([_script_process("so_ban = 99\nphi = 1 / 0")])
    view = engine.start("script_rules_test", {})
    view = engine.show(engine.complete_task(ready(view, "declare")["id"], {"so_ban": 2})["id"])
    assert view["data"]["so_ban"] == 2 and "phi" not in view["data"]
    assert "ZeroDivisionError" in view["incidents"][0]["message"]
