"""A database that goes away in the middle of a step is an outage, not a fault of the process or the request.

Found by bench/fault_test.py: PostgreSQL restarted while a citizen's declaration was being completed; the
connection died while the review's ``working_hours(4)`` boundary timer read the working calendar, and the
engine reported it as a failing script (HTTP 422 "Script failed" with the driver's message), which a client
does not retry.  It must surface as the database error itself (HTTP 5xx, retried), with nothing written.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

import dossiers.timer_functions as timer_functions
from engine.errors import MotcuaError
from tests.dossiers.conftest import COPY_FORM

CERTIFIED_COPY = "2.000815"


def test_a_lost_connection_while_a_timer_reads_the_calendar_is_not_a_script_error(desk, monkeypatch):
    code = desk.submit(CERTIFIED_COPY)["code"]
    desk.do(code, "information", actor="citizen-1")
    real = timer_functions.calendar_for
    calls = {"n": 0}

    def connection_lost(conn: Any) -> Any:
        calls["n"] += 1
        raise OperationalError("SELECT ... FROM calendar_days", {}, Exception("server closed the connection"))

    monkeypatch.setattr(timer_functions, "calendar_for", connection_lost)
    with pytest.raises(OperationalError) as caught:
        desk.do(code, "submit_online", {"form_data": COPY_FORM}, actor="citizen-1")
    assert calls["n"] >= 1 and not isinstance(caught.value, MotcuaError)
    # Nothing was written: the declaration is still to do, and done again once the database is back.
    assert [t["element_id"] for t in desk.service.dossier(code)["tasks"]] == ["submit_online"]
    assert desk.service.engine.incidents() == []
    monkeypatch.setattr(timer_functions, "calendar_for", real)
    desk.do(code, "submit_online", {"form_data": COPY_FORM}, actor="citizen-1")
    assert [t["element_id"] for t in desk.service.dossier(code)["tasks"]] == ["review"]
