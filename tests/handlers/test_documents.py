"""The official documents of a dossier (forms 01-06) and declaration forms, rendered as PDF and read back."""

from __future__ import annotations

import copy
import io
import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader

from engine.errors import ValidationError
from handlers.document_layout import vn_date, vn_money
from handlers.documents import DOCUMENT_KINDS, TITLES, render_document, render_form

CODE = "000.00.01.H53-261130-0001"
NAME = "Nguyễn Thị Hương"
AGENCY = "Sở Tư pháp tỉnh Hà Giang"
ISSUED = "ngày 30 tháng 11 năm 2026"


def make_dossier() -> dict[str, Any]:
    return {
        "code": CODE,
        "procedure": {
            "code": "1.001417",
            "name": "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam",
            "processing_days": 10,
            "agency": {
                "name": AGENCY,
                "code": "000.00.01.H53",
                "parent": "UBND tỉnh Hà Giang",
                "place": "Hà Giang",
            },
        },
        "applicant": {
            "name": NAME,
            "id_number": "002190001234",
            "address": "Số 12, tổ 5, phường Minh Khai, thành phố Hà Giang",
            "phone": "0912 345 678",
            "email": "huong@example.vn",
        },
        "channel": "online",
        "received_at": datetime(2026, 11, 30, 10, 5),
        "due_at": datetime(2026, 12, 14, 10, 5),
        "components": [
            {"name": "Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp", "copies": 1, "original": True},
            {"name": "Bản chụp Căn cước công dân", "copies": 1, "original": False},
        ],
        "supplement_items": ["Bản chụp giấy xác nhận cư trú", "Tờ khai còn thiếu nơi thường trú"],
        "refusal_reason": "Hồ sơ không thuộc thẩm quyền giải quyết của Sở Tư pháp.",
        "apology": {
            "reason": "Cần xác minh thêm thông tin tại Công an xã Đồng Văn",
            "new_due_at": datetime(2026, 12, 18, 16, 0),
            "signer": "Trần Văn Đức",
        },
        "handovers": [
            {
                "at": datetime(2026, 11, 30, 10, 30),
                "from_role": "desk",
                "to_role": "specialist",
                "actor": "Lê Thu Trang",
                "result": "on_time",
                "note": "Hồ sơ đầy đủ",
            }
        ],
        "officer": "Lê Thu Trang",
        "issued_at": datetime(2026, 11, 30, 10, 6),
        "fees": [{"description": "Lệ phí cấp Phiếu lý lịch tư pháp", "amount": Decimal("200000")}],
    }


EXPECTED = {
    "receipt": [
        "10 giờ 05 phút, ngày 30 tháng 11 năm 2026",
        "10 giờ 05 phút, ngày 14 tháng 12 năm 2026",
        "200.000 đồng",
        "Bản chính",
        "Trực tuyến",
        "Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp",
        "NGƯỜI TIẾP NHẬN HỒ SƠ",
    ],
    "supplement_request": [
        "1. Bản chụp giấy xác nhận cư trú",
        "2. Tờ khai còn thiếu nơi thường trú",
        "Lê Thu Trang",
    ],
    "refusal": ["Hồ sơ không thuộc thẩm quyền giải quyết của Sở Tư pháp."],
    "apology": [
        "Lý do: Cần xác minh thêm thông tin tại Công an xã Đồng Văn",
        "hẹn trả kết quả vào 16 giờ 00 phút, ngày 18 tháng 12 năm 2026",
        "Trần Văn Đức",
    ],
    "control_slip": ["Bộ phận tiếp nhận và trả kết quả", "Chuyên viên xử lý", "Lê Thu Trang", "Đúng hạn"],
    "dossier_log": ["Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam", "30/11/2026"],
}


def pdf_text(pdf: bytes) -> str:
    """All the text of the PDF, NFC, with runs of whitespace (line wraps included) made one space."""
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text))


def page_texts(pdf: bytes) -> list[str]:
    return [re.sub(r"\s+", " ", page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages]


def embedded_fonts(pdf: bytes) -> list[str]:
    """The base names of the fonts on the first page that carry an embedded TrueType file (/FontFile2)."""
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    names = []
    for ref in page["/Resources"]["/Font"].values():
        font = ref.get_object()
        for descendant in font.get("/DescendantFonts", []):
            descriptor = descendant.get_object()["/FontDescriptor"].get_object()
            if "/FontFile2" in descriptor:
                names.append(str(font["/BaseFont"]))
    return names


def nfd(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFD", value)
    if isinstance(value, dict):
        return {key: nfd(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nfd(item) for item in value]
    return value


@pytest.mark.parametrize("kind", sorted(DOCUMENT_KINDS))
def test_each_kind_renders_its_vietnamese_text(kind):
    text = pdf_text(render_document(kind, make_dossier()))
    for expected in [TITLES[kind], "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]:
        assert expected in text
    for expected in [f"Hà Giang, {ISSUED}", NAME, AGENCY, CODE, *EXPECTED[kind]]:
        assert unicodedata.normalize("NFC", expected) in text, expected


@pytest.mark.parametrize("kind", sorted(DOCUMENT_KINDS))
def test_each_kind_embeds_its_font_and_is_deterministic(kind):
    first = render_document(kind, make_dossier())
    assert first.startswith(b"%PDF-")
    assert b"/FontFile2" in first
    assert any("DejaVuSerif" in name for name in embedded_fonts(first))
    assert render_document(kind, make_dossier()) == first


def test_the_creation_date_comes_from_issued_at_not_the_clock():
    reader = PdfReader(io.BytesIO(render_document("receipt", make_dossier())))
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == "D:20261130100600+07'00'"
    assert reader.metadata["/Title"] == TITLES["receipt"]


def test_aware_times_print_in_viet_nam_time():
    aware = make_dossier()
    aware["issued_at"] = datetime(2026, 11, 30, 3, 6, tzinfo=UTC)
    aware["received_at"] = datetime(2026, 11, 30, 3, 5, tzinfo=UTC)
    aware["due_at"] = datetime(2026, 12, 14, 3, 5, tzinfo=UTC)
    assert render_document("receipt", aware) == render_document("receipt", make_dossier())


def test_decomposed_input_comes_out_composed():
    decomposed = nfd(make_dossier())
    assert decomposed["applicant"]["name"] != NAME
    pdf = render_document("receipt", decomposed)
    raw = " ".join(page_texts(pdf))
    assert NAME in raw and AGENCY in raw
    assert unicodedata.normalize("NFD", NAME) not in raw
    assert pdf == render_document("receipt", make_dossier())


def test_a_long_handover_table_spans_pages_and_repeats_its_headings():
    dossier = make_dossier()
    hop = dossier["handovers"][0]
    dossier["handovers"] = [{**hop, "note": f"Lượt giao nhận số {number}"} for number in range(1, 61)]
    pages = page_texts(render_document("control_slip", dossier))
    assert len(pages) >= 2
    for page_number, page in enumerate(pages, 1):
        assert "Bên giao" in page and "Bên nhận" in page
        assert f"Trang {page_number}/{len(pages)}" in page
    assert "Lượt giao nhận số 1 " in pages[0] + " "
    assert "Lượt giao nhận số 60" in pages[-1] and "Lượt giao nhận số 60" not in pages[0]


def test_a_minimal_dossier_renders_with_blanks_for_what_is_missing():
    minimal = {"code": CODE, "issued_at": datetime(2026, 11, 30, 10, 6)}
    extra = {
        "receipt": {"received_at": datetime(2026, 11, 30, 10, 5), "due_at": datetime(2026, 12, 14, 10, 5)},
        "supplement_request": {"supplement_items": ["Bản chụp giấy xác nhận cư trú"]},
        "refusal": {"refusal_reason": "Không đủ điều kiện"},
        "apology": {"apology": {"reason": "Chờ xác minh", "new_due_at": datetime(2026, 12, 18, 16, 0)}},
        "control_slip": {},
        "dossier_log": {},
    }
    for kind in DOCUMENT_KINDS:
        text = pdf_text(render_document(kind, {**minimal, **extra[kind]}))
        assert TITLES[kind] in text and ISSUED in text
    receipt = pdf_text(render_document("receipt", {**minimal, **extra["receipt"]}))
    assert "tiếp nhận hồ sơ của: …………………" in receipt and "Không thu phí, lệ phí." in receipt


def test_unknown_kind_is_a_validation_error_on_kind():
    with pytest.raises(ValidationError) as caught:
        render_document("certificate", make_dossier())
    assert "kind" in caught.value.errors


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("receipt", ("code",), "code"),
        ("refusal", ("issued_at",), "issued_at"),
        ("receipt", ("due_at",), "due_at"),
        ("supplement_request", ("supplement_items",), "supplement_items"),
        ("refusal", ("refusal_reason",), "refusal_reason"),
        ("apology", ("apology", "new_due_at"), "apology.new_due_at"),
        ("dossier_log", ("code",), "code"),
    ],
)
def test_a_missing_required_key_is_named(kind, path, field):
    dossier = make_dossier()
    holder = dossier
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    with pytest.raises(ValidationError) as caught:
        render_document(kind, dossier)
    assert field in caught.value.errors


def test_malformed_values_are_named_by_their_path():
    dossier = make_dossier()
    dossier["fees"][0]["amount"] = "hai trăm nghìn"
    with pytest.raises(ValidationError) as caught:
        render_document("receipt", dossier)
    assert "fees[0].amount" in caught.value.errors
    dossier = make_dossier()
    dossier["received_at"] = "yesterday"
    with pytest.raises(ValidationError) as caught:
        render_document("receipt", dossier)
    assert "received_at" in caught.value.errors


def test_the_dossier_log_lists_every_entry_and_names_a_bad_one():
    second = {**make_dossier(), "code": "000.00.01.H53-261130-0002"}
    second["applicant"] = {**second["applicant"], "name": "Hoàng Văn Đạt"}
    text = pdf_text(
        render_document(
            "dossier_log", {"issued_at": datetime(2026, 11, 30), "entries": [make_dossier(), second]}
        )
    )
    assert CODE in text and "000.00.01.H53-261130-0002" in text and "Hoàng Văn Đạt" in text
    with pytest.raises(ValidationError) as caught:
        render_document("dossier_log", {"issued_at": datetime(2026, 11, 30), "entries": [make_dossier(), {}]})
    assert "entries[1].code" in caught.value.errors


def test_vietnamese_dates_and_money():
    assert vn_date(datetime(2026, 11, 30)) == ISSUED
    assert vn_date(datetime(2027, 1, 5)) == "ngày 05 tháng 01 năm 2027"
    assert vn_date(datetime(2027, 3, 5)) == "ngày 05 tháng 3 năm 2027"
    assert vn_money(Decimal("200000")) == "200.000 đồng"
    assert vn_money(Decimal("1234567.50")) == "1.234.567,5 đồng"
    assert vn_money(Decimal("0")) == "0 đồng"


FORM = {
    "id": "03/2013/TT-LLTP",
    "title": "Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp",
    "addressee": AGENCY,
    "schema": {
        "type": "object",
        "required": ["full_name"],
        "properties": {
            "full_name": {"title": "Họ, chữ đệm và tên khai sinh", "type": "string"},
            "birth_date": {"title": "Ngày, tháng, năm sinh", "type": "string", "format": "date"},
            "sex": {"title": "Giới tính", "type": "string", "enum": ["Nam", "Nữ"]},
            "married": {"title": "Đã kết hôn", "type": "boolean"},
            "residence": {
                "title": "Nơi thường trú",
                "type": "object",
                "properties": {"province": {"title": "Tỉnh, thành phố", "type": "string"}},
            },
            "purpose": {
                "title": "Mục đích sử dụng Phiếu lý lịch tư pháp",
                "type": "string",
                "maxLength": 500,
            },
        },
    },
}
DATA = {
    "full_name": NAME,
    "birth_date": "1990-05-12",
    "sex": "Nữ",
    "married": False,
    "residence": {"province": "Hà Giang"},
    "purpose": "Bổ sung hồ sơ xin việc",
}
LABELS = [
    "Họ, chữ đệm và tên khai sinh (*)",
    "Ngày, tháng, năm sinh",
    "Giới tính",
    "Nơi thường trú",
    "Tỉnh, thành phố",
]


def test_a_blank_form_has_the_labels_and_no_values():
    pdf = render_form(FORM)
    text = pdf_text(pdf)
    assert "TỜ KHAI YÊU CẦU CẤP PHIẾU LÝ LỊCH TƯ PHÁP" in text and f"Kính gửi: {AGENCY}" in text
    for label in LABELS:
        assert label in text
    assert "Họ, chữ đệm và tên khai sinh (*): ....." in text
    assert "Ngày, tháng, năm sinh: ngày …… tháng …… năm ……" in text
    assert "□ Có □ Không" in text and "□ Nam □ Nữ" in text
    for value in (NAME, "1990", "Bổ sung hồ sơ xin việc"):
        assert value not in text
    assert b"/FontFile2" in pdf and render_form(copy.deepcopy(FORM)) == pdf


def test_a_prefilled_form_shows_the_values():
    pdf = render_form(FORM, DATA)
    text = pdf_text(pdf)
    assert f"Họ, chữ đệm và tên khai sinh (*): {NAME}" in text
    assert "Ngày, tháng, năm sinh: ngày 12 tháng 5 năm 1990" in text
    assert "Giới tính: Nữ" in text and "Đã kết hôn: Không" in text
    assert "Tỉnh, thành phố: Hà Giang" in text
    assert "Mục đích sử dụng Phiếu lý lịch tư pháp: Bổ sung hồ sơ xin việc" in text
    assert render_form(FORM, nfd(DATA)) == pdf


def test_a_form_without_title_or_properties_is_rejected():
    with pytest.raises(ValidationError) as caught:
        render_form({"schema": {"properties": {}}})
    assert "title" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        render_form({"title": "Tờ khai", "schema": {}})
    assert "schema.properties" in caught.value.errors
