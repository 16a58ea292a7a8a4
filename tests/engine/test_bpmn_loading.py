"""Loading, hardening and linting of BPMN documents (engine.bpmn, engine.xml_safety)."""

from __future__ import annotations

import hashlib
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn.specs.event_definitions.timer import DurationTimerEventDefinition
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from engine.bpmn import Problem, load_documents
from engine.bpmn_lint import lint_documents
from engine.errors import DefinitionError
from engine.sandbox import check_script
from engine.xml_safety import MAX_DOCUMENT_BYTES, element_lines, parse_xml

DATA = Path(__file__).resolve().parents[1] / "data" / "bpmn"


def doc(name: str) -> tuple[str, bytes]:
    return name, (DATA / name).read_bytes()


def load_error(*documents: tuple[str, bytes], **kwargs) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        load_documents(list(documents), **kwargs)
    return info.value


def line_of(name: str, needle: str) -> int:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return next(number for number, text in enumerate(lines, start=1) if needle in text)


class ConnectionRecorder:
    """A local TCP server that records every connection made to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.connections: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, address = self.server.accept()
            except TimeoutError:
                continue
            self.connections.append(address)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


@pytest.fixture
def recorder() -> Iterator[ConnectionRecorder]:
    server = ConnectionRecorder()
    yield server
    server.close()


# ------------------------------------------------------------------------------------------ valid documents


def test_valid_process_is_parsed_with_all_element_kinds() -> None:
    [process] = load_documents([doc("valid_full.bpmn")])

    assert process.key == "ly_lich_tu_phap_l3"
    assert process.name == "Cấp phiếu lý lịch tư pháp (mức 3)"
    assert process.source_file == "valid_full.bpmn"
    assert process.xml == (DATA / "valid_full.bpmn").read_bytes()
    assert process.sha256 == hashlib.sha256(process.xml).hexdigest()
    assert process.subprocess_specs == {}
    specs = process.spec.task_specs
    kinds = {name: type(specs[name]).__name__ for name in specs}
    assert kinds["Task_tiep_nhan"] == "UserTask"
    assert kinds["Gateway_hop_le"] == "ExclusiveGateway"
    assert kinds["Task_ghi_nhan"] == "ScriptTask"
    assert kinds["Task_tinh_phi"] == "ServiceTask"
    assert specs["Task_ghi_nhan"].script == 'tong_phi = phi["amount"] * 2'
    service = specs["Task_tinh_phi"]
    assert service.operation_name == "fees.compute"
    assert service.operation_params["copies"] == {"value": "so_ban_sao + 1", "type": "int"}
    assert service.result_variable == "phi"
    assert specs["Task_tiep_nhan"].extensions["properties"] == {"formKey": "tiep_nhan_v1"}
    assert "Kiểm tra" in specs["Task_tiep_nhan"].extensions["instructionsForEndUser"]
    assert specs["Event_cho_ket_qua"].event_definition.name == "ket_qua_xac_minh"
    timer = specs["Event_cho_1_gio"].event_definition
    assert isinstance(timer, DurationTimerEventDefinition)
    assert timer.expression == '"PT1H"'
    assert specs["Task_tiep_nhan"].lane == "mot_cua"
    assert specs["Event_cho_ket_qua"].lane == "chuyen_vien"


def test_str_input_with_an_encoding_declaration_is_accepted() -> None:
    text = (
        (DATA / "valid_full.bpmn")
        .read_text(encoding="utf-8")
        .replace('encoding="UTF-8"', 'encoding="UTF-16"')
    )
    root = parse_xml(text, "as_text.bpmn")
    assert root.get("id") == "Definitions_ly_lich"
    [process] = load_documents([("as_text.bpmn", text)])  # type: ignore[list-item]
    assert process.key == "ly_lich_tu_phap_l3"


def test_call_activity_resolves_across_two_files() -> None:
    parent, child = load_documents([doc("call_parent.bpmn"), doc("call_child.bpmn")])

    assert (parent.key, child.key) == ("ho_so_cha", "tham_dinh_con")
    assert set(parent.subprocess_specs) == {"tham_dinh_con"}
    assert parent.subprocess_specs["tham_dinh_con"].name == "tham_dinh_con"
    assert parent.sha256 != child.sha256


def test_missing_call_target_is_fetched_from_resolver() -> None:
    asked: list[str] = []

    def resolver(process_id: str) -> tuple[str, bytes] | None:
        asked.append(process_id)
        return doc("call_child.bpmn") if process_id == "tham_dinh_con" else None

    [parent] = load_documents([doc("call_parent.bpmn")], resolve_missing=resolver)

    assert asked == ["tham_dinh_con"]
    assert set(parent.subprocess_specs) == {"tham_dinh_con"}


def test_deployed_document_does_not_override_the_new_version() -> None:
    """The fetched document (same file name, old version of the caller) only contributes what is missing."""
    fetched = ("call_parent.bpmn", (DATA / "deployed_bundle.bpmn").read_bytes())

    [parent] = load_documents([doc("call_parent.bpmn")], resolve_missing=lambda process_id: fetched)

    assert parent.name == "Hồ sơ liên thông"
    assert parent.xml == (DATA / "call_parent.bpmn").read_bytes()
    assert set(parent.subprocess_specs) == {"tham_dinh_con"}


def test_parser_class_can_be_chosen() -> None:
    class RecordingParser(SpiffBpmnParser):  # type: ignore[misc]
        created = 0

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            RecordingParser.created += 1

    [process] = load_documents([doc("valid_full.bpmn")], parser_class=RecordingParser)
    assert process.key == "ly_lich_tu_phap_l3"
    assert lint_documents([doc("valid_full.bpmn")], parser_class=RecordingParser) == []
    assert RecordingParser.created == 2


def test_two_processes_in_one_file_share_the_document_hash() -> None:
    first, second = load_documents([doc("two_processes.bpmn")])

    assert (first.key, second.key) == ("dang_ky_khai_sinh", "xac_minh_cu_tru")
    assert first.sha256 == second.sha256 == hashlib.sha256(first.xml).hexdigest()
    assert set(first.subprocess_specs) == {"xac_minh_cu_tru"}


def test_element_lines_maps_ids_to_lines() -> None:
    lines = element_lines(parse_xml(doc("valid_full.bpmn")[1], "valid_full.bpmn"))
    assert lines["Task_tinh_phi"] == line_of("valid_full.bpmn", '<bpmn:serviceTask id="Task_tinh_phi"')
    assert lines["Flow_hop_le"] == line_of("valid_full.bpmn", 'id="Flow_hop_le"')


# ------------------------------------------------------------------------------------------ loading errors


def test_missing_call_target_names_call_activity_and_process() -> None:
    error = load_error(doc("call_missing.bpmn"), resolve_missing=lambda process_id: None)

    assert error.element_id == "Call_tham_dinh"
    assert "quy_trinh_khong_ton_tai" in error.message
    assert error.file == "call_missing.bpmn"
    assert error.line == line_of("call_missing.bpmn", 'id="Call_tham_dinh"')


def test_missing_call_target_without_resolver() -> None:
    error = load_error(doc("call_parent.bpmn"))
    assert error.element_id == "Call_tham_dinh"
    assert "tham_dinh_con" in error.message


def test_sequence_flow_to_missing_element() -> None:
    error = load_error(doc("dangling_flow.bpmn"))

    assert error.element_id == "Flow_1"
    assert "Task_khong_co" in error.message
    assert error.line == line_of("dangling_flow.bpmn", 'id="Flow_1"')


def test_schema_violation_names_line_and_element() -> None:
    error = load_error(doc("xsd_invalid.bpmn"))

    assert error.file == "xsd_invalid.bpmn"
    assert error.line == line_of("xsd_invalid.bpmn", "Sideways")
    assert error.element_id == "Gateway_sai"
    assert "gatewayDirection" in error.message
    assert "bpmn:exclusiveGateway" in error.message  # namespace URIs are shortened


def test_spiffworkflow_validation_error_is_converted() -> None:
    error = load_error(doc("service_no_operator.bpmn"))

    assert error.element_id == "Task_goi_dich_vu"
    assert error.line == line_of("service_no_operator.bpmn", 'id="Task_goi_dich_vu"')
    assert "operator" in error.message


def test_other_parser_exceptions_are_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self, bpmn, filename=None):
        raise KeyError("boom")

    monkeypatch.setattr(SpiffBpmnParser, "add_bpmn_xml", broken)
    error = load_error(doc("valid_full.bpmn"))

    assert error.message == "could not parse: KeyError: 'boom'"
    assert error.file == "valid_full.bpmn"


def test_exceptions_inside_task_parsers_are_reported_as_could_not_parse() -> None:
    text = (DATA / "valid_full.bpmn").read_text(encoding="utf-8")
    broken = text.replace(
        '<spiffworkflow:property name="formKey" value="tiep_nhan_v1" />',
        '<spiffworkflow:property value="x" />',
    )
    error = load_error(("broken_property.bpmn", broken.encode()))

    assert error.message == "could not parse: KeyError: 'name'"
    assert error.element_id == "Task_tiep_nhan"
    assert error.line == line_of("valid_full.bpmn", '<bpmn:userTask id="Task_tiep_nhan"')


def test_document_without_executable_process() -> None:
    error = load_error(doc("not_executable.bpmn"))
    assert "no executable process" in error.message
    assert error.file == "not_executable.bpmn"


def test_error_str_contains_file_and_line() -> None:
    error = load_error(doc("xsd_invalid.bpmn"))
    assert str(error).startswith(f"xsd_invalid.bpmn:{error.line} [Gateway_sai]: ")


def test_duplicate_process_ids_across_documents() -> None:
    error = load_error(doc("call_child.bpmn"), ("copy.bpmn", doc("call_child.bpmn")[1]))
    assert "Duplicate process ID" in error.message
    assert error.file == "copy.bpmn"


# ------------------------------------------------------------------------------------------ hostile input


@pytest.mark.parametrize(
    "name", ["xxe.bpmn", "doctype_plain.bpmn", "external_dtd.bpmn", "parameter_entity.bpmn"]
)
def test_any_doctype_is_rejected(name: str) -> None:
    error = load_error(doc(name))
    assert "DOCTYPE" in error.message
    assert error.file == name
    assert error.line == 2


def test_xxe_never_reads_the_file() -> None:
    error = load_error(doc("xxe.bpmn"))
    assert "root:" not in str(error.to_dict())


def test_utf16_doctype_is_rejected() -> None:
    data = (DATA / "xxe.bpmn").read_text(encoding="utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    error = load_error(("xxe16.bpmn", data.encode("utf-16")))
    assert "DOCTYPE" in error.message


def test_billion_laughs_is_rejected_fast_without_expansion() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    error = load_error(doc("billion_laughs.bpmn"))
    elapsed = time.perf_counter() - started
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before

    assert "DOCTYPE" in error.message
    assert elapsed < 0.1, f"took {elapsed:.3f}s"
    assert grown_kib < 20 * 1024


def test_doctype_hidden_from_the_byte_scan_is_still_refused() -> None:
    """Even if the up-front scan were bypassed, the parser expands nothing and the DOCTYPE is refused."""
    from engine import xml_safety

    data = (DATA / "billion_laughs.bpmn").read_bytes()
    original = xml_safety._FORBIDDEN_BYTES
    xml_safety._FORBIDDEN_BYTES = ()
    try:
        started = time.perf_counter()
        with pytest.raises(DefinitionError) as info:
            parse_xml(data, "billion_laughs.bpmn")
        assert time.perf_counter() - started < 0.5
    finally:
        xml_safety._FORBIDDEN_BYTES = original
    assert info.value.file == "billion_laughs.bpmn"


def test_external_dtd_and_parameter_entity_make_no_connection(recorder: ConnectionRecorder) -> None:
    url = f"http://127.0.0.1:{recorder.port}/evil.dtd"
    body = '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D"/>'
    documents = [
        ("system.bpmn", f'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "{url}">\n{body}'.encode()),
        ("param.bpmn", f'<!DOCTYPE x [<!ENTITY % r SYSTEM "{url}"> %r;]>\n{body}'.encode()),
        ("xxe.bpmn", f'<!DOCTYPE x [<!ENTITY e SYSTEM "{url}">]>\n<x>&e;</x>'.encode()),
    ]
    for document in documents:
        assert "DOCTYPE" in load_error(document).message
    time.sleep(0.2)
    assert recorder.connections == []


def test_schema_validation_ignores_schema_location_hints(recorder: ConnectionRecorder) -> None:
    text = (DATA / "valid_full.bpmn").read_text(encoding="utf-8")
    spiff_ns = "http://spiffworkflow.org/bpmn/schema/1.0/core"
    hint = (
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{spiff_ns} http://127.0.0.1:{recorder.port}/s.xsd" '
    )
    hinted = text.replace('id="Definitions_ly_lich"', hint + 'id="Definitions_ly_lich"')
    [process] = load_documents([("hinted.bpmn", hinted.encode())])
    time.sleep(0.2)
    assert process.key == "ly_lich_tu_phap_l3"
    assert recorder.connections == []


def test_oversize_document_is_rejected() -> None:
    data = doc("valid_full.bpmn")[1].replace(
        b"</bpmn:definitions>", b"<!--" + b"x" * MAX_DOCUMENT_BYTES + b"-->"
    )
    error = load_error(("huge.bpmn", data))
    assert "limit" in error.message
    assert error.file == "huge.bpmn"


def test_garbage_is_rejected_with_line() -> None:
    error = load_error(doc("not_xml.bpmn"))
    assert error.message.startswith("not well-formed XML")
    assert (error.file, error.line) == ("not_xml.bpmn", 1)


@pytest.mark.parametrize("data", [b"", b"   \n", b"\x00\x01\x02", b"<a><b></a>", "<a>\udcff</a>"])
def test_malformed_input_never_escapes_as_another_exception(data: bytes | str) -> None:
    with pytest.raises(DefinitionError):
        load_documents([("bad.bpmn", data)])  # type: ignore[list-item]


# ------------------------------------------------------------------------------------------ lint


def fake_checker(source: str, mode: str) -> list[str]:
    try:
        compile(source, "<bpmn>", mode)
    except SyntaxError as exc:
        return [f"syntax error: {exc.msg}"]
    return ["imports are not allowed"] if "import" in source else []


def test_lint_clean_document_has_no_problems() -> None:
    problems = lint_documents(
        [doc("valid_full.bpmn"), doc("call_parent.bpmn"), doc("call_child.bpmn"), doc("two_processes.bpmn")],
        known_operators={"fees.compute"},
        check_expression=fake_checker,
    )
    assert problems == []


def test_lint_reports_three_separate_problems() -> None:
    problems = lint_documents(
        [doc("lint_three_problems.bpmn")], known_operators=set(), check_expression=fake_checker
    )

    assert [(p.element_id, p.line) for p in problems] == [
        ("Task_khong_ten", line_of("lint_three_problems.bpmn", 'id="Task_khong_ten"')),
        ("Task_mo_coi", line_of("lint_three_problems.bpmn", 'id="Task_mo_coi"')),
        ("Flow_tu_choi", line_of("lint_three_problems.bpmn", 'id="Flow_tu_choi"')),
    ]
    assert "no name" in problems[0].message
    assert "cannot be reached" in problems[1].message
    assert "without a condition" in problems[2].message
    assert problems[0].to_dict() == {
        "file": "lint_three_problems.bpmn",
        "line": problems[0].line,
        "element_id": "Task_khong_ten",
        "message": problems[0].message,
    }


def test_lint_passes_scripts_and_expressions_to_the_checker() -> None:
    seen: list[tuple[str, str]] = []

    def checker(source: str, mode: str) -> list[str]:
        seen.append((source, mode))
        return []

    lint_documents([doc("valid_full.bpmn")], check_expression=checker)

    assert ('tong_phi = phi["amount"] * 2', "exec") in seen
    assert ("hop_le == True", "eval") in seen
    assert ("so_ban_sao + 1", "eval") in seen
    assert ("'ly_lich_tu_phap'", "eval") in seen
    assert ('"PT1H"', "eval") in seen


def test_lint_reports_expression_and_operator_problems_at_their_elements() -> None:
    text = (DATA / "valid_full.bpmn").read_text(encoding="utf-8")
    text = text.replace("hop_le == True", "hop_le ==").replace("tong_phi = phi", "import os; tong_phi = phi")
    problems = lint_documents(
        [("x.bpmn", text.encode())], known_operators={"other"}, check_expression=fake_checker
    )

    by_element = {(p.element_id, p.message.split(":")[0]) for p in problems}
    assert by_element == {
        ("Task_tinh_phi", "serviceTask 'Task_tinh_phi' uses unknown operator 'fees.compute'"),
        ("Task_ghi_nhan", "script"),
        ("Flow_hop_le", "condition"),
    }


def test_lint_reports_every_broken_document_and_keeps_going() -> None:
    problems = lint_documents(
        [doc("xxe.bpmn"), doc("not_xml.bpmn"), doc("xsd_invalid.bpmn"), doc("valid_full.bpmn")],
        known_operators={"fees.compute"},
    )
    assert [p.file for p in problems] == ["xxe.bpmn", "not_xml.bpmn", "xsd_invalid.bpmn"]
    assert all(isinstance(p, Problem) for p in problems)


def test_lint_structural_problems() -> None:
    problems = lint_documents(
        [
            doc("dangling_flow.bpmn"),
            doc("not_executable.bpmn"),
            doc("call_missing.bpmn"),
            doc("service_no_operator.bpmn"),
        ]
    )
    found = {(p.file, p.element_id) for p in problems}

    assert ("dangling_flow.bpmn", "Flow_1") in found
    assert ("not_executable.bpmn", "ban_nhap") in found
    assert ("call_missing.bpmn", "Call_tham_dinh") in found
    assert ("service_no_operator.bpmn", "Task_goi_dich_vu") in found
    assert len(problems) == len({(p.file, p.element_id, p.message) for p in problems})  # no duplicates


def test_lint_reports_missing_start_and_end_events() -> None:
    text = (DATA / "call_child.bpmn").read_text(encoding="utf-8")
    text = text.replace('<bpmn:endEvent id="End_con">', '<bpmn:task id="End_con">').replace(
        "</bpmn:endEvent>", "</bpmn:task>"
    )
    problems = lint_documents([("no_end.bpmn", text.encode())])
    assert [(p.element_id, p.message) for p in problems] == [
        ("tham_dinh_con", "process 'tham_dinh_con' has no end event")
    ]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("complete ==", "condition: "),  # what an analyst leaves half-typed in the modeler
        ("__import__('os').system('id')", "condition: "),  # refused by the sandbox's compiler
    ],
)
def test_deploy_refuses_a_condition_that_lint_refuses(broken: str, message: str) -> None:
    source = Path(__file__).parents[1] / "data" / "engine" / "lifecycle.bpmn"
    good = "complete == True and copies &gt; 0"
    xml = source.read_bytes()
    assert good.encode() in xml
    document = ("lifecycle.bpmn", xml.replace(good.encode(), broken.encode()))
    problems = lint_documents([document], check_expression=check_script)
    assert [message in p.message for p in problems] == [True], problems
    with pytest.raises(DefinitionError) as caught:
        load_documents([document])
    assert message in caught.value.message
    assert caught.value.line is not None
