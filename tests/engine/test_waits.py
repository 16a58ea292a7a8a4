"""Waiting: boundary timers that interrupt a task, and message correlation that must be unambiguous."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import ConflictError, NotFoundError
from tests.engine.conftest import bpmn_file


def test_boundary_timer_interrupts_the_task_when_due(make_engine, clock):
    engine = make_engine()
    engine.deploy([bpmn_file("boundary_timer.bpmn")])
    view = engine.start("deadline_test", {}, business_key="LATE-1")
    [task] = view["tasks"]
    [timer] = view["timers"]
    assert task["element_id"] == "appraise" and timer["element_id"] == "overdue"
    assert timedelta(days=2, hours=23) < timer["due_at"] - clock.now() < timedelta(days=3, hours=1)

    clock.advance(days=2)
    assert make_engine().fire_due_timers() == []
    clock.advance(days=1, minutes=1)
    [fired] = make_engine().fire_due_timers()
    assert fired["outcome"] == "fired"
    view = make_engine().show(view["id"])
    assert [t["element_id"] for t in view["tasks"]] == ["apologise"]
    assert view["timers"] == []
    # The interrupted task can no longer be completed.
    with pytest.raises(NotFoundError):
        engine.complete_task(task["id"], {})


def test_completing_in_time_cancels_the_deadline(engine, clock):
    engine.deploy([bpmn_file("boundary_timer.bpmn")])
    view = engine.start("deadline_test", {})
    view = engine.complete_task(view["tasks"][0]["id"], {"ket_qua": "đạt"})
    assert view["status"] == "completed" and view["timers"] == []
    clock.advance(days=4)
    assert engine.fire_due_timers() == []


def _waiting_for_payment(engine, business_key, dossier_code):
    view = engine.start("lifecycle_test", {"dossier_code": dossier_code}, business_key=business_key)
    return engine.complete_task(view["tasks"][0]["id"], {"complete": True, "copies": 1})


def test_message_matching_two_instances_is_refused_and_changes_nothing(engine):
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    first = _waiting_for_payment(engine, "B-1", "SAME")
    second = _waiting_for_payment(engine, "B-2", "SAME")
    with pytest.raises(ConflictError, match="2 instances"):
        engine.send_message("payment.confirmed", {"dossier_code": "SAME"}, {})
    assert engine.show(first["id"])["row_version"] == first["row_version"]
    assert engine.show(second["id"])["row_version"] == second["row_version"]
    view = engine.send_message("payment.confirmed", {"business_key": "B-2", "dossier_code": "SAME"}, {})
    assert view["id"] == second["id"] and view["timers"]


def test_message_with_wrong_correlation_is_not_found(engine):
    engine.deploy([bpmn_file("lifecycle.bpmn")])
    _waiting_for_payment(engine, "B-1", "D-1")
    with pytest.raises(NotFoundError):
        engine.send_message("payment.confirmed", {"business_key": "B-1", "dossier_code": "D-2"}, {})
    with pytest.raises(NotFoundError):
        engine.send_message("no.such.message", {"business_key": "B-1"}, {})
