"""One statement reads what a task request checks first: the ready task, its claim, its dossier and the
instance's row version; and a completion that already knows the task still checks its form."""

from __future__ import annotations

import pytest

from dossiers.catalogue import load_workflow_forms
from dossiers.service import DossierService
from dossiers.task_context import DOSSIER_COLUMNS, TaskContext
from engine.errors import NotFoundError, TaskStateError, ValidationError
from tests.dossiers.conftest import COPY_FORM, WORKFLOWS, Desk

CERTIFIED_COPY = "2.000815"  # level 3, commune


def _review(desk: Desk) -> tuple[str, dict]:
    code = desk.submit(CERTIFIED_COPY)["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": COPY_FORM}, actor="citizen-1")
    return code, desk.task(code, "review")


def test_the_context_is_what_the_separate_queries_read(desk: Desk) -> None:
    code, review = _review(desk)
    found = desk.service.task_context(review["id"])
    task, dossier = desk.service.task_with_dossier(review["id"])
    assert isinstance(found, TaskContext)
    assert found.task == task and found.task["claimed_by"] is None
    # The dossier's columns a task request reads, as the whole row has them (not the applicant's details).
    assert found.dossier == {name: dossier[name] for name in DOSSIER_COLUMNS}
    assert found.dossier["code"] == code
    assert "applicant" in dossier and "applicant" not in found.dossier
    assert found.row_version == desk.service.instance_version(task["instance_id"])


def test_the_context_carries_the_claim(desk: Desk) -> None:
    _, review = _review(desk)
    desk.service.engine.claim_task(review["id"], "desk.officer")
    found = desk.service.task_context(review["id"])
    assert found.task["claimed_by"] == "desk.officer"
    assert found.task["claimed_at"] == desk.service.task_with_dossier(review["id"])[0]["claimed_at"]


def test_a_task_no_longer_ready_or_unknown_says_why(desk: Desk) -> None:
    code, review = _review(desk)
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    with pytest.raises(TaskStateError):
        desk.service.task_context(review["id"])
    with pytest.raises(NotFoundError):
        desk.service.task_context("no-such-task")


def test_a_completion_that_knows_its_task_still_checks_the_form(desk: Desk) -> None:
    code, review = _review(desk)
    service = DossierService(desk.service.engine, load_workflow_forms(WORKFLOWS))  # with the task forms
    known = service.task_context(review["id"])
    with pytest.raises(ValidationError) as caught:
        service.complete_task(review["id"], {"decision": "maybe"}, "desk.officer", known=known)
    assert "decision" in caught.value.errors
    service.complete_task(review["id"], {"decision": "accept"}, "desk.officer", known=known)
    assert desk.task(code, "appraise")["lane"] == "specialist"


def test_a_declaration_task_is_checked_against_the_procedure_form(desk: Desk) -> None:
    code = desk.submit(CERTIFIED_COPY)["code"]
    desk.do(code, "information", actor="citizen-1")
    submit = desk.task(code, "submit_online")
    known = desk.service.task_context(submit["id"])
    with pytest.raises(ValidationError) as caught:
        desk.service.complete_task(submit["id"], {"form_data": {}}, "citizen-1", known=known)
    assert any(field.startswith("form_data.") for field in caught.value.errors)
