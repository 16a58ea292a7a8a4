"""Level conformance (engine.bpmn_levels.check_level) of the bundled processes and of broken variants."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from engine.bpmn_levels import RULES, check_level
from engine.bpmn_lint import lint_documents
from engine.sandbox import check_script
from engine.xml_safety import BPMN_NS
from handlers import default_registry
from handlers.dossier_ops import HANDLERS as DOSSIER_HANDLERS

BPMN = Path(__file__).resolve().parents[2] / "workflows" / "bpmn"
FRAGMENTS = {
    path.stem: (f"fragments/{path.name}", path.read_bytes()) for path in (BPMN / "fragments").glob("*.bpmn")
}
Documents = list[tuple[str, bytes]]


def level_file(level: int) -> tuple[str, bytes]:
    return (f"dossier_l{level}.bpmn", (BPMN / f"dossier_l{level}.bpmn").read_bytes())


def bundle(level: int, *, without: tuple[str, ...] = ()) -> Documents:
    """The level's file and every fragment except ``without``."""
    return [level_file(level), *(doc for name, doc in sorted(FRAGMENTS.items()) if name not in without)]


def messages(problems: list) -> list[str]:
    return [problem.message for problem in problems]


def line_of(xml: bytes, needle: str) -> int:
    return (
        xml.decode().splitlines().index(next(line for line in xml.decode().splitlines() if needle in line))
        + 1
    )


def edited(document: tuple[str, bytes], change: Callable[[etree._Element], None]) -> tuple[str, bytes]:
    """Return the document after ``change`` was applied to its tree."""
    root = etree.fromstring(document[1])
    change(root)
    return (document[0], etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def by_id(root: etree._Element, element_id: str) -> etree._Element:
    [element] = root.xpath("//*[@id=$id]", id=element_id)
    return element


def remove_node(element_id: str, *, bridge: bool = False) -> Callable[[etree._Element], None]:
    """Remove a flow node, its lane reference and its diagram shapes.

    With ``bridge`` the one incoming flow is led to where the one outgoing flow went; otherwise every flow
    touching the node goes too.
    """

    def change(root: etree._Element) -> None:
        flows = list(root.iter(f"{{{BPMN_NS}}}sequenceFlow"))
        incoming = [flow for flow in flows if flow.get("targetRef") == element_id]
        outgoing = [flow for flow in flows if flow.get("sourceRef") == element_id]
        if bridge:
            [into], [out_of] = incoming, outgoing
            into.set("targetRef", out_of.get("targetRef"))
            incoming = []
        removed = {element_id, *(flow.get("id") for flow in incoming + outgoing)}
        doomed = [
            element
            for element in root.iter(etree.Element)
            if element.get("id") in removed
            or element.get("bpmnElement") in removed
            or (etree.QName(element).localname == "flowNodeRef" and element.text == element_id)
        ]
        for element in doomed:
            element.getparent().remove(element)

    return change


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_every_bundled_level_conforms_to_its_level(level: int) -> None:
    assert check_level(bundle(level), level) == []


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_every_bundled_level_lints_clean_with_the_dossier_handlers(level: int) -> None:
    operators = [*default_registry(), *DOSSIER_HANDLERS]
    problems = lint_documents(bundle(level), known_operators=operators, check_expression=check_script)
    assert [problem.to_dict() for problem in problems] == []


def test_the_rules_are_a_table_per_level() -> None:
    assert sorted(RULES) == [1, 2, 3, 4]
    assert set(RULES[3]) <= set(RULES[4])


def test_level_4_without_the_payment_task_is_rejected() -> None:
    broken = edited(FRAGMENTS["frag_payment"], remove_node("request_payment", bridge=True))
    documents = [level_file(4), broken, *(doc for name, doc in FRAGMENTS.items() if name != "frag_payment")]
    [problem] = check_level(documents, 4)
    assert problem.message == (
        "level 4 needs an online payment request: a serviceTask with role 'payment' that calls a "
        "'payment.*' operator"
    )
    # A problem about a missing element points at the level's process.
    xml = level_file(4)[1]
    assert (problem.file, problem.element_id) == ("dossier_l4.bpmn", "dossier_l4")
    assert problem.line == line_of(xml, '<bpmn:process id="dossier_l4"')


def test_a_payment_task_with_the_wrong_operator_is_named() -> None:
    def change(root: etree._Element) -> None:
        operator = root.find(".//{http://spiffworkflow.org/bpmn/schema/1.0/core}serviceTaskOperator")
        operator.set("id", "util.add_amounts")

    broken = edited(FRAGMENTS["frag_payment"], change)
    documents = [level_file(4), broken, *(doc for name, doc in FRAGMENTS.items() if name != "frag_payment")]
    [problem] = check_level(documents, 4)
    assert "payment" in problem.message
    assert "'request_payment' has that role but calls operator 'util.add_amounts'" in problem.message


def test_level_3_without_a_supplement_path_is_rejected() -> None:
    broken = edited(FRAGMENTS["frag_reception"], remove_node("supplement"))
    documents = [level_file(3), broken, *(doc for name, doc in FRAGMENTS.items() if name != "frag_reception")]
    [problem] = check_level(documents, 3)
    assert "supplement" in problem.message
    assert problem.message.startswith("level 3 needs an online supplement loop")


def test_a_supplement_that_does_not_lead_back_to_the_review_is_rejected() -> None:
    def change(root: etree._Element) -> None:
        by_id(root, "flow_rc_resubmit").set("targetRef", "mark_accepted")

    broken = edited(FRAGMENTS["frag_reception"], change)
    documents = [level_file(3), broken, *(doc for name, doc in FRAGMENTS.items() if name != "frag_reception")]
    assert [p.message.split(":")[0] for p in check_level(documents, 3)] == [
        "level 3 needs an online supplement loop"
    ]


def test_a_submission_without_form_key_in_the_wrong_lane_says_why() -> None:
    def change(root: etree._Element) -> None:
        task = by_id(root, "submit_online")
        for prop in task.iter("{http://spiffworkflow.org/bpmn/schema/1.0/core}property"):
            if prop.get("name") == "formKey":
                prop.getparent().remove(prop)
        [ref] = [ref for ref in root.iter(f"{{{BPMN_NS}}}flowNodeRef") if ref.text == "submit_online"]
        by_id(root, "Lane_reception").append(ref)

    documents = [edited(level_file(3), change), *FRAGMENTS.values()]
    [problem] = check_level(documents, 3)
    assert problem.message == (
        "level 3 needs an applicant submission: a userTask in lane 'applicant' with role 'submission' "
        "that has a formKey ('submit_online' has that role but is in lane 'reception' and has no formKey)"
    )


def test_level_3_checked_as_level_4_lists_the_missing_payment_and_delivery() -> None:
    problems = check_level(bundle(3), 4, process_key="dossier_l3")
    wanted = [message.split("with role ")[1].split()[0] for message in messages(problems)]
    assert wanted == [
        "'payment'",
        "'payment_wait'",
        "'payment_expiry'",
        "'delivery_online'",
        "'delivery_online_wait'",
        "'delivery_desk'",
        "'delivery_post'",
        "'delivery_post_wait'",
        "'delivery_post_cancelled'",
    ]
    assert {(p.file, p.element_id) for p in problems} == {("dossier_l3.bpmn", "dossier_l3")}


def test_level_3_does_not_need_the_paper_steps_but_level_2_does() -> None:
    assert check_level(bundle(3), 3) == []
    problems = check_level(bundle(3), 2, process_key="dossier_l3")
    assert [m.split(" with role ")[1].split()[0] for m in messages(problems)] == [
        "'download'",
        "'paper_submission'",
    ]


def test_a_processing_level_is_not_level_1() -> None:
    problems = check_level(bundle(2), 1, process_key="dossier_l2")
    found = {problem.element_id: problem for problem in problems}
    assert {"download_forms", "record_paper_submission", "review", "appraise", "approve"} <= set(found)
    review = found["review"]
    assert review.file == "fragments/frag_reception.bpmn"
    assert review.line == line_of(FRAGMENTS["frag_reception"][1], '<bpmn:userTask id="review"')
    assert review.message == "level 1 is information only, but userTask 'review' has role 'review'"


def test_a_missing_fragment_is_reported_at_the_call_activity() -> None:
    problems = check_level(bundle(3, without=("frag_processing",)), 3)
    call = problems[0]
    assert (call.file, call.element_id) == ("dossier_l3.bpmn", "call_processing")
    assert call.line == line_of(level_file(3)[1], '<bpmn:callActivity id="call_processing"')
    assert "'frag_processing'" in call.message and "neither in these documents nor deployed" in call.message
    # What the fragment would have added is missing as well.
    assert [m.split(":")[0] for m in messages(problems[1:])] == [
        "level 3 needs a specialist's appraisal",
        "level 3 needs a leader's approval",
    ]


def test_a_missing_fragment_is_asked_of_the_resolver() -> None:
    asked: list[str] = []

    def resolve(process_id: str) -> tuple[str, bytes] | None:
        asked.append(process_id)
        return FRAGMENTS.get(process_id)

    assert check_level([level_file(4)], 4, resolve_missing=resolve) == []
    assert sorted(asked) == ["frag_delivery", "frag_payment", "frag_processing", "frag_reception"]


def test_the_top_process_is_the_only_one_that_is_not_a_fragment() -> None:
    def rename(root: etree._Element) -> None:
        by_id(root, "dossier_l3").set("id", "ly_lich_tu_phap")
        by_id(root, "Participant_dossier_l3").set("processRef", "ly_lich_tu_phap")

    assert check_level([edited(level_file(3), rename), *FRAGMENTS.values()], 3) == []
    [problem] = check_level([level_file(3), level_file(4), *FRAGMENTS.values()], 2)
    assert "give the process key" in problem.message and "dossier_l3, dossier_l4" in problem.message
    [problem] = check_level(bundle(3), 3, process_key="no_such_process")
    assert problem.message == "no process 'no_such_process' in the documents"


def test_unknown_level_and_unreadable_documents_are_problems() -> None:
    [problem] = check_level(bundle(3), 5)
    assert problem.message == "unknown level 5; levels are 1, 2, 3, 4"
    problems = check_level([("broken.bpmn", b"<bpmn:definitions"), *bundle(1)], 1)
    assert [p.file for p in problems] == ["broken.bpmn"]


def test_a_final_status_on_a_waiting_task_is_rejected() -> None:
    """Queues leave dossiers in a final status out, so only end events may set one."""

    def change(root: etree._Element) -> None:
        task = by_id(root, "review")
        [status] = task.xpath(".//*[local-name()='property'][@name='dossier_status']")
        status.set("value", "10")

    broken = edited(FRAGMENTS["frag_reception"], change)
    documents = [level_file(3), broken, *(doc for name, doc in FRAGMENTS.items() if name != "frag_reception")]
    [problem] = check_level(documents, 3)
    assert problem.element_id == "review"
    assert problem.message.startswith("'review' sets the final dossier_status 10 but is a userTask")


def test_the_final_statuses_of_the_rules_are_the_domains() -> None:
    from dossiers.status import FINAL
    from engine.bpmn_level_rules import FINAL_STATUSES

    assert {str(int(status)) for status in FINAL} == FINAL_STATUSES
