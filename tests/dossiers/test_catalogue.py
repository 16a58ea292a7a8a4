"""The bundled procedure catalogue loads strictly, and fees, times and Decree 42 classes come out right."""

from __future__ import annotations

import json
import shutil
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dossiers.catalogue import (
    FORMS_DIR,
    MOT_PHAN,
    PROCEDURES_DIR,
    TOAN_TRINH,
    ProcedureSchema,
    compute_fees,
    decree_42_class,
    dump_procedure,
    load_forms,
    load_procedures,
    processing_time,
)
from engine.errors import NotFoundError, ValidationError

JUDICIAL_RECORD = "2.000488"
CERTIFIED_COPY = "2.000815"
EXTRACT_COPY = "2.000635"
MARRIAGE_FOREIGN = "1.000893"
PARENT_CHILD = "1.001022"
WILL = "2.000913"


@pytest.fixture(scope="module")
def forms() -> dict[str, dict[str, Any]]:
    return load_forms(FORMS_DIR)


@pytest.fixture(scope="module")
def procedures(forms: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {procedure["code"]: procedure for procedure in load_procedures(PROCEDURES_DIR, forms)}


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the bundled forms and procedures that a test may break."""
    forms_dir, procedures_dir = tmp_path / "forms", tmp_path / "procedures"
    shutil.copytree(FORMS_DIR, forms_dir)
    shutil.copytree(PROCEDURES_DIR, procedures_dir)
    return forms_dir, procedures_dir


def _edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _refusal(folders: tuple[Path, Path]) -> ValidationError:
    forms_dir, procedures_dir = folders
    with pytest.raises(ValidationError) as caught:
        load_procedures(procedures_dir, load_forms(forms_dir))
    return caught.value


def _total(lines: list[dict[str, Any]]) -> Decimal:
    return sum((line["amount"] for line in lines), Decimal(0))


# --- the bundled files ---------------------------------------------------------------------------------


def test_bundled_catalogue_loads_sorted_with_all_levels(procedures: dict[str, dict[str, Any]]) -> None:
    assert len(procedures) >= 6
    assert list(procedures) == sorted(procedures)
    assert {procedure["level"] for procedure in procedures.values()} == {1, 2, 3, 4}
    for procedure in procedures.values():
        assert procedure["bpmn"] == f"dossier_l{procedure['level']}"
        assert procedure["legal_basis"] and procedure["steps"] and procedure["notes"]


def test_levels_and_agency_codes(procedures: dict[str, dict[str, Any]]) -> None:
    levels = {code: procedure["level"] for code, procedure in procedures.items()}
    assert levels == {
        JUDICIAL_RECORD: 4,
        EXTRACT_COPY: 4,
        CERTIFIED_COPY: 3,
        MARRIAGE_FOREIGN: 3,
        PARENT_CHILD: 2,
        WILL: 1,
    }
    assert procedures[JUDICIAL_RECORD]["agency"]["level"] == "province"
    assert procedures[JUDICIAL_RECORD]["agency"]["code"] == "000.00.14.H26"


def test_every_component_form_exists_and_every_form_is_used(
    procedures: dict[str, dict[str, Any]], forms: dict[str, dict[str, Any]]
) -> None:
    used = {c["form"] for p in procedures.values() for c in p["components"] if c["form"]}
    assert used == set(forms)
    assert forms["lltp_mau_03"]["title"] == "Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp (Mẫu 03/2013/TT-LLTP)"


def test_bundled_files_are_nfc_on_disk() -> None:
    for path in [*FORMS_DIR.glob("*.json"), *PROCEDURES_DIR.glob("*.json")]:
        text = path.read_text(encoding="utf-8")
        assert unicodedata.is_normalized("NFC", text), path.name


def test_judicial_record_form_carries_the_real_fields(forms: dict[str, dict[str, Any]]) -> None:
    schema = forms["lltp_mau_03"]["schema"]
    expected = {
        "ho_ten", "gioi_tinh", "ngay_sinh", "noi_sinh", "quoc_tich", "dan_toc", "so_giay_to",
        "noi_thuong_tru", "noi_tam_tru", "ho_ten_cha", "ho_ten_me", "ho_ten_vo_chong",
        "qua_trinh_cu_tru", "tinh_trang_an_tich", "muc_dich", "so_luong_phieu",
    }  # fmt: skip
    assert expected <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert schema["properties"]["ngay_sinh"]["format"] == "date"


def test_procedures_dump_back_to_json(procedures: dict[str, dict[str, Any]]) -> None:
    dumped = dump_procedure(procedures[CERTIFIED_COPY])
    assert dumped["fees"][0]["amount"] == "2000"
    assert dumped["fees"][0]["max_amount"] == "200000"
    assert dumped["legal_basis"][0]["date"] == "2015-02-16"
    for procedure in procedures.values():
        data = json.loads(json.dumps(dump_procedure(procedure)))
        assert ProcedureSchema().load(data) == procedure


# --- Decree 42 classes ---------------------------------------------------------------------------------


def test_decree_42_class_of_each_bundled_procedure(procedures: dict[str, dict[str, Any]]) -> None:
    classes = {code: decree_42_class(procedure) for code, procedure in procedures.items()}
    assert classes == {
        JUDICIAL_RECORD: TOAN_TRINH,
        EXTRACT_COPY: TOAN_TRINH,
        CERTIFIED_COPY: MOT_PHAN,
        MARRIAGE_FOREIGN: MOT_PHAN,
        PARENT_CHILD: MOT_PHAN,
        WILL: MOT_PHAN,
    }


@pytest.mark.parametrize(
    ("procedure", "expected"),
    [
        ({"level": 4, "delivery_methods": ["online"], "components": []}, TOAN_TRINH),
        ({"level": 4, "delivery_methods": ["post", "desk"]}, TOAN_TRINH),
        ({"level": 4, "delivery_methods": ["desk"]}, MOT_PHAN),
        ({"level": 4, "delivery_methods": ["online"], "in_person_required": True}, MOT_PHAN),
        (
            {"level": 4, "delivery_methods": ["online"], "components": [{"in_person_required": True}]},
            MOT_PHAN,
        ),
        ({"level": 3, "delivery_methods": ["post"]}, MOT_PHAN),
    ],
)
def test_decree_42_class_rule(procedure: dict[str, Any], expected: str) -> None:
    assert decree_42_class(procedure) == expected


# --- fees ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pages", "amount"), [(1, 2000), (2, 4000), (3, 5000), (5, 7000), (300, 200000)])
def test_certified_copy_fee_per_page_with_cap(
    procedures: dict[str, dict[str, Any]], pages: int, amount: int
) -> None:
    lines = compute_fees(procedures[CERTIFIED_COPY], pages=pages)
    assert [line["amount"] for line in lines] == [Decimal(amount)]
    assert lines[0]["mode"] == "before" and lines[0]["unit"] == "per_page"


def test_certified_copy_cap_is_per_copy(procedures: dict[str, dict[str, Any]]) -> None:
    assert _total(compute_fees(procedures[CERTIFIED_COPY], pages=5, copies=2)) == Decimal(14000)
    assert _total(compute_fees(procedures[CERTIFIED_COPY], pages=300, copies=2)) == Decimal(400000)


def test_judicial_record_fee(procedures: dict[str, dict[str, Any]]) -> None:
    judicial = procedures[JUDICIAL_RECORD]
    assert _total(compute_fees(judicial)) == Decimal(200000)
    assert _total(compute_fees(judicial, copies=2)) == Decimal(200000)
    assert _total(compute_fees(judicial, copies=4)) == Decimal(210000)
    assert _total(compute_fees(judicial, case="giam_phi")) == Decimal(100000)
    exempt = compute_fees(judicial, case="mien_phi")
    assert exempt[0]["mode"] == "exempt" and exempt[0]["amount"] == 0 and exempt[0]["rate"] == 200000


def test_extract_copy_fee_per_copy(procedures: dict[str, dict[str, Any]]) -> None:
    assert _total(compute_fees(procedures[EXTRACT_COPY], copies=3)) == Decimal(24000)


def test_locally_fixed_fee_has_no_amount(procedures: dict[str, dict[str, Any]]) -> None:
    lines = compute_fees(procedures[MARRIAGE_FOREIGN])
    assert lines[0]["amount"] is None and "Hội đồng nhân dân" in lines[0]["description"]


@pytest.mark.parametrize("bad", [{"pages": 0}, {"copies": -1}, {"pages": True}, {"copies": 1.5}])
def test_fee_quantities_must_be_positive_integers(procedures: dict[str, dict[str, Any]], bad: Any) -> None:
    with pytest.raises(ValidationError):
        compute_fees(procedures[CERTIFIED_COPY], **bad)


def test_unknown_case_is_not_found(procedures: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(NotFoundError):
        compute_fees(procedures[JUDICIAL_RECORD], case="khong_co")


# --- processing time -----------------------------------------------------------------------------------


def test_judicial_record_processing_time_per_case(procedures: dict[str, dict[str, Any]]) -> None:
    judicial = procedures[JUDICIAL_RECORD]
    assert processing_time(judicial) == (10.0, "working_days")
    assert processing_time(judicial, "post") == (10.0, "working_days")
    for case in ("cu_tru_nhieu_noi", "nguoi_nuoc_ngoai", "xac_minh_xoa_an_tich"):
        assert processing_time(judicial, case=case) == (15.0, "working_days")
    name = judicial["cases"][1]["name"]
    assert processing_time(judicial, "in_person", case=name) == (15.0, "working_days")
    assert processing_time(judicial, case="giam_phi") == (10.0, "working_days")


def test_other_processing_times(procedures: dict[str, dict[str, Any]]) -> None:
    assert processing_time(procedures[CERTIFIED_COPY]) == (0.0, "working_days")
    assert processing_time(procedures[CERTIFIED_COPY], case="keo_dai") == (2.0, "working_days")
    assert processing_time(procedures[EXTRACT_COPY], "post") == (0.0, "working_days")
    assert processing_time(procedures[MARRIAGE_FOREIGN]) == (10.0, "working_days")
    assert processing_time(procedures[PARENT_CHILD], "in_person", case="can_xac_minh") == (
        8.0,
        "working_days",
    )


def test_missing_channel_is_not_found(procedures: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(NotFoundError):
        processing_time(procedures[WILL])  # level 1: no online channel


# --- refusals ------------------------------------------------------------------------------------------


def test_unknown_key_is_refused(folders: tuple[Path, Path]) -> None:
    _edit(folders[1] / f"{JUDICIAL_RECORD}.json", lambda d: d["agency"].update(phone="024"))
    error = _refusal(folders)
    assert f"{JUDICIAL_RECORD}.json" in error.message
    assert "agency.phone" in error.errors


def test_bad_fee_mode_is_refused(folders: tuple[Path, Path]) -> None:
    _edit(folders[1] / f"{EXTRACT_COPY}.json", lambda d: d["fees"][0].update(mode="later"))
    error = _refusal(folders)
    assert f"{EXTRACT_COPY}.json" in error.message
    assert list(error.errors) == ["fees.0.mode"]
    assert error.to_dict()["errors"] == error.errors


def test_missing_form_reference_is_refused(folders: tuple[Path, Path]) -> None:
    (folders[0] / "lltp_mau_04.json").unlink()
    error = _refusal(folders)
    assert f"{JUDICIAL_RECORD}.json" in error.message
    assert error.errors == {"components.1.form": ["Unknown form 'lltp_mau_04'."]}


@pytest.mark.parametrize("bpmn", ["dossier_l3", "judicial_record_l2"])
def test_level_bpmn_mismatch_is_refused(folders: tuple[Path, Path], bpmn: str) -> None:
    _edit(folders[1] / f"{JUDICIAL_RECORD}.json", lambda d: d.update(bpmn=bpmn))
    error = _refusal(folders)
    assert f"{JUDICIAL_RECORD}.json" in error.message and "bpmn" in error.errors


def test_custom_process_key_of_the_right_level_is_accepted(folders: tuple[Path, Path]) -> None:
    _edit(folders[1] / f"{JUDICIAL_RECORD}.json", lambda d: d.update(bpmn="judicial_record_l4"))
    _edit(folders[1] / f"{EXTRACT_COPY}.json", lambda d: d.pop("bpmn"))
    loaded = {p["code"]: p for p in load_procedures(folders[1], load_forms(folders[0]))}
    assert loaded[JUDICIAL_RECORD]["bpmn"] == "judicial_record_l4"
    assert loaded[EXTRACT_COPY]["bpmn"] == "dossier_l4"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(level=5), "level"),
        (lambda d: d.update(bpmn="Dossier-4"), "bpmn"),
        (lambda d: d["agency"].update(code="H26"), "agency.code"),
        (lambda d: d["agency"].update(level="ward"), "agency.level"),
        (lambda d: d["channels"][0].update(unit="weeks"), "channels.0.unit"),
        (lambda d: d["channels"].append(dict(d["channels"][0])), "channels"),
        (lambda d: d.update(channels=[d["channels"][0]]), "channels"),  # level 4 without online
        (lambda d: d.update(delivery_methods=[]), "delivery_methods"),
        (lambda d: d["fees"][0].update(unit="per_kg"), "fees.0.unit"),
        (lambda d: d["fees"][0].update(amount=-1), "fees.0.amount"),
        (lambda d: d["fees"][1]["tiers"].append({"from_unit": 2, "amount": 1}), "fees.1.tiers"),
        (lambda d: d["cases"][0].pop("unit"), "cases.0.unit"),
        (lambda d: d["applicant_types"][0].update(kind="alien"), "applicant_types.0.kind"),
        (lambda d: d["legal_basis"][0].update(date="17/6/2009"), "legal_basis.0.date"),
        (lambda d: d.update(code="2.000489"), "code"),  # must match the file name
    ],
)
def test_other_bad_fields_are_refused(folders: tuple[Path, Path], change: Any, field: str) -> None:
    _edit(folders[1] / f"{JUDICIAL_RECORD}.json", change)
    error = _refusal(folders)
    assert f"{JUDICIAL_RECORD}.json" in error.message
    assert field in error.errors, error.errors


def test_low_level_procedures_cannot_take_online_submission(folders: tuple[Path, Path]) -> None:
    online = {"kind": "online", "processing_time": 2, "unit": "working_days", "description": "Trực tuyến"}
    _edit(folders[1] / f"{WILL}.json", lambda d: d["channels"].append(online))
    assert "channels" in _refusal(folders).errors


def test_level_two_needs_a_form(folders: tuple[Path, Path]) -> None:
    _edit(folders[1] / f"{PARENT_CHILD}.json", lambda d: d["components"][0].update(form=None))
    assert "level" in _refusal(folders).errors


def test_broken_json_is_refused_naming_the_file(folders: tuple[Path, Path]) -> None:
    (folders[1] / f"{WILL}.json").write_text("{not json", encoding="utf-8")
    error = _refusal(folders)
    assert f"{WILL}.json" in error.message and "_file" in error.errors


def test_bad_form_is_refused(folders: tuple[Path, Path]) -> None:
    def untitle(data: dict[str, Any]) -> None:
        del data["schema"]["properties"]["ho_ten"]["title"]
        data["schema"]["additionalProperties"] = True
        data["schema"]["required"].append("khong_co")

    _edit(folders[0] / "lltp_mau_03.json", untitle)
    with pytest.raises(ValidationError) as caught:
        load_forms(folders[0])
    assert "lltp_mau_03.json" in caught.value.message
    assert {
        "schema.properties.ho_ten",
        "schema.additionalProperties",
        "schema.required",
    } <= set(caught.value.errors)


def test_missing_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_forms(tmp_path / "nowhere")


# --- Unicode -------------------------------------------------------------------------------------------


def test_strings_come_out_nfc_from_nfd_input(folders: tuple[Path, Path]) -> None:
    forms_dir, procedures_dir = folders
    for path in [procedures_dir / f"{MARRIAGE_FOREIGN}.json", forms_dir / "ho_tich_to_khai_ket_hon.json"]:
        text = path.read_text(encoding="utf-8")
        path.write_text(unicodedata.normalize("NFD", text), encoding="utf-8")
        assert not unicodedata.is_normalized("NFC", path.read_text(encoding="utf-8"))
    forms = load_forms(forms_dir)
    marriage = next(p for p in load_procedures(procedures_dir, forms) if p["code"] == MARRIAGE_FOREIGN)
    assert marriage["name"] == "Đăng ký kết hôn có yếu tố nước ngoài"
    assert marriage["steps"][0] == unicodedata.normalize("NFC", marriage["steps"][0])
    assert forms["ho_tich_to_khai_ket_hon"]["schema"]["properties"]["ben_nu"]["title"] == "Bên nữ"
    assert unicodedata.is_normalized("NFC", json.dumps(forms, ensure_ascii=False))
    assert unicodedata.is_normalized("NFC", json.dumps(ProcedureSchema().dump(marriage), ensure_ascii=False))


# --- JSON Schema validity ------------------------------------------------------------------------------


def test_every_form_schema_is_valid_draft_2020_12(forms: dict[str, dict[str, Any]]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for form in forms.values():
        jsonschema.Draft202012Validator.check_schema(form["schema"])


def _declaration(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ho_ten": "Nguyễn Văn An",
        "gioi_tinh": "Nam",
        "ngay_sinh": "1990-05-17",
        "noi_sinh": "Hà Nội",
        "quoc_tich": "Việt Nam",
        "dan_toc": "Kinh",
        "loai_giay_to": "Thẻ căn cước",
        "so_giay_to": "001090012345",
        "noi_thuong_tru": "Phường Hoàn Kiếm, Hà Nội",
        "dien_thoai": "0912345678",
        "email": "an@example.vn",
        "ho_ten_cha": "Nguyễn Văn Bình",
        "ho_ten_me": "Trần Thị Cúc",
        "qua_trinh_cu_tru": [
            {
                "tu_thang_nam": "05/2004",
                "den_thang_nam": "nay",
                "noi_cu_tru": "Hà Nội",
                "nghe_nghiep_noi_lam_viec": "Kỹ sư",
            }
        ],
        "tinh_trang_an_tich": "Không có án tích",
        "loai_phieu": "Phiếu số 1",
        "muc_dich": "Bổ sung hồ sơ xin việc",
        "so_luong_phieu": 2,
        "cam_doan": True,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.parametrize(
    ("changes", "valid"),
    [
        ({}, True),
        ({"loai_giay_to": "Hộ chiếu", "so_giay_to": "C1234567"}, True),
        ({"so_giay_to": "00109001234"}, False),  # an ID card number has 12 digits
        ({"dien_thoai": "12345"}, False),
        ({"noi_thuong_tru": None}, False),  # neither permanent nor temporary residence
        ({"noi_thuong_tru": None, "noi_tam_tru": "Quận 1, TP. Hồ Chí Minh"}, True),
        ({"tinh_trang_an_tich": "Có án tích"}, False),  # details of the record are then required
        ({"loai_phieu": "Phiếu số 2", "xac_nhan_cam_dam_nhiem": True}, False),
        ({"so_luong_phieu": 0}, False),
        ({"cam_doan": False}, False),
        ({"ghi_chu": "thêm"}, False),
    ],
)
def test_judicial_record_declaration_validates(
    forms: dict[str, dict[str, Any]], changes: dict[str, Any], valid: bool
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(
        forms["lltp_mau_03"]["schema"], format_checker=jsonschema.FormatChecker()
    )
    assert validator.is_valid(_declaration(**changes)) is valid
