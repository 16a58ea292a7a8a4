"""The official documents of a dossier (Circular 01/2018/TT-VPCP, forms 01-06) and declaration forms, as PDF.

``render_document(kind, dossier)`` takes a plain dict built from the database.  Keys (``*`` = required;
any other missing key prints as dots to fill in by hand, or its line is left out):

- every kind: ``code``\\*, ``issued_at``\\* (document date and PDF creation date), ``number`` (document
  number), ``place`` (place name before the date), ``procedure`` {``code``, ``name``, ``processing_days``,
  ``agency`` {``name``, ``code``, ``parent`` (governing body), ``phone``, ``place``}}, ``applicant``
  {``name``, ``id_number``, ``address``, ``phone``, ``email``}, ``officer`` (receiving official);
- ``receipt``: ``received_at``\\*, ``due_at``\\*, ``channel`` (in_person/online/post), ``components``
  [{``name``, ``copies``, ``original``}], ``sets``, ``fees`` [{``description``, ``amount`` (VND)}],
  ``result_delivery`` (in_person/online/post), ``log_book``, ``log_number``;
- ``supplement_request``: ``supplement_items``\\* [str], ``supplement_reason``, ``received_at``;
- ``refusal``: ``refusal_reason``\\*, ``received_at``;
- ``apology``: ``apology`` {``reason``\\*, ``new_due_at``\\*, ``signer``}, ``received_at``, ``due_at``;
- ``control_slip``: ``handovers`` [{``at``, ``from_role``, ``to_role``, ``actor``, ``result``, ``note``}],
  ``coordinating_agency``, ``received_at``, ``due_at``;
- ``dossier_log``: ``entries`` (list of dossier dicts, one row each; without it the dossier itself is the one
  row, and then ``code`` is required), ``log_book``; per row ``code``\\*, ``procedure``, ``applicant``,
  ``sets``, ``received_at``, ``due_at``, ``decided_at``, ``returned_at``, ``note``.

Dates are datetimes (naive = Viet Nam time), dates or ISO text.  All text is NFC-normalised first; the
fonts are embedded, and the same input always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .document_layout import (
    DOTS,
    VN_TZ,
    DocumentPdf,
    View,
    blank_field,
    fail,
    nfc,
    nfc_deep,
    to_amount,
    value_text,
    vn_date,
    vn_datetime,
    vn_money,
    vn_short,
)

DOCUMENT_KINDS = {
    "receipt": "Mẫu 01 - Giấy tiếp nhận hồ sơ và hẹn trả kết quả",
    "supplement_request": "Mẫu 02 - Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
    "refusal": "Mẫu 03 - Phiếu từ chối tiếp nhận giải quyết hồ sơ",
    "apology": "Mẫu 04 - Phiếu xin lỗi và hẹn lại ngày trả kết quả",
    "control_slip": "Mẫu 05 - Phiếu kiểm soát quá trình giải quyết hồ sơ",
    "dossier_log": "Mẫu 06 - Sổ theo dõi hồ sơ",
}
TITLES = {
    "receipt": "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
    "supplement_request": "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ",
    "refusal": "PHIẾU TỪ CHỐI TIẾP NHẬN GIẢI QUYẾT HỒ SƠ",
    "apology": "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
    "control_slip": "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ",
    "dossier_log": "SỔ THEO DÕI HỒ SƠ",
}
CHANNELS = {"in_person": "Trực tiếp", "online": "Trực tuyến", "post": "Qua dịch vụ bưu chính công ích"}
ROLES = {
    "desk": "Bộ phận tiếp nhận và trả kết quả",
    "specialist": "Chuyên viên xử lý",
    "leader": "Lãnh đạo",
    "applicant": "Tổ chức, cá nhân",
}
RESULTS = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn"}
DESK = "Bộ phận tiếp nhận và trả kết quả"
FORM_DATE = datetime(2018, 11, 23, tzinfo=VN_TZ)  # blank forms carry no date of their own


def render_document(kind: str, dossier: Mapping[str, Any]) -> bytes:
    """Render the document ``kind`` (a key of ``DOCUMENT_KINDS``) of ``dossier`` as PDF bytes.

    Raises:
        ValidationError: unknown ``kind`` (field "kind"), or a required key missing or malformed (the field
            named by its dotted path, e.g. "code", "apology.new_due_at", "entries[2].code").
    """
    if not isinstance(kind, str) or kind not in DOCUMENT_KINDS:
        raise fail("kind", f"must be one of {', '.join(DOCUMENT_KINDS)}")
    if not isinstance(dossier, Mapping):
        raise fail("dossier", "must be a mapping")
    view = View(nfc_deep(dossier))
    code = view.need("code") if kind != "dossier_log" or view.get("entries") is None else None
    issued = view.needed_moment("issued_at")
    pdf = DocumentPdf(
        created=issued,
        title=TITLES[kind],
        landscape=kind == "dossier_log",
        footer=f"{DOCUMENT_KINDS[kind]}" + (f" - Mã hồ sơ: {nfc(code)}" if code else ""),
    )
    agency = [view.text("procedure.agency.parent", ""), view.text("procedure.agency.name", "")]
    if kind != "apology":
        agency.append(DESK)
    place = view.text("place", view.text("procedure.agency.place", "……"))
    pdf.national_header(agency, f"Số: {view.text('number', '……………')}", f"{place}, {vn_date(issued)}")
    pdf.title_block(TITLES[kind], view.text("log_book", "") if kind == "dossier_log" else "")
    _BUILDERS[kind](pdf, view)
    return pdf.render()


def _agency(view: View) -> str:
    return view.text("procedure.agency.name")


def _intro(pdf: DocumentPdf, view: View, *, contacts: bool) -> None:
    """The opening lines every desk document shares: code, who submitted what."""
    pdf.para(f"Mã hồ sơ: {view.text('code')}", bold=True)
    pdf.para(f"{DESK} {_agency(view)} tiếp nhận hồ sơ của: {view.text('applicant.name')}")
    if contacts:
        pdf.para(f"Số định danh cá nhân/Mã số doanh nghiệp: {view.text('applicant.id_number')}")
        pdf.para(f"Địa chỉ: {view.text('applicant.address')}")
        pdf.para(f"Số điện thoại: {view.text('applicant.phone')}    Email: {view.text('applicant.email')}")
    procedure = view.text("procedure.name")
    if view.get("procedure.code") is not None:
        procedure += f" (mã thủ tục: {view.text('procedure.code')})"
    pdf.para(f"Nội dung yêu cầu giải quyết: {procedure}")
    channel = view.get("channel")
    if channel is not None:
        pdf.para(f"Hình thức nộp hồ sơ: {CHANNELS.get(channel, nfc(channel))}")


def _received_line(pdf: DocumentPdf, view: View) -> None:
    received = view.moment("received_at")
    if received is not None:
        pdf.para(f"Thời gian tiếp nhận hồ sơ: {vn_datetime(received)}")


def _components(pdf: DocumentPdf, view: View) -> None:
    rows = []
    for number, item in enumerate(view.records("components"), 1):
        original = item.get("original")
        form = "" if original is None else ("Bản chính" if original else "Bản sao")
        rows.append([str(number), item.text("name"), form, item.text("copies", "")])
    if not rows:
        pdf.para("Không có thành phần hồ sơ được kê khai.", indent=5)
        return
    pdf.grid(["STT", "Tên giấy tờ", "Hình thức", "Số lượng"], rows, (8, 62, 18, 12))


def _fees(pdf: DocumentPdf, view: View) -> None:
    rows, total = [], to_amount(0, "fees")
    for number, fee in enumerate(view.records("fees"), 1):
        amount = to_amount(fee.need("amount"), f"fees[{number - 1}].amount")
        total += amount
        rows.append([str(number), fee.text("description"), vn_money(amount)])
    if not rows:
        pdf.para("Không thu phí, lệ phí.", indent=5)
        return
    rows.append(["", "Tổng cộng", vn_money(total)])
    pdf.grid(["STT", "Nội dung", "Số tiền"], rows, (8, 62, 30))


def _receipt(pdf: DocumentPdf, view: View) -> None:
    received, due = view.needed_moment("received_at"), view.needed_moment("due_at")
    _intro(pdf, view, contacts=True)
    pdf.para("1. Thành phần hồ sơ nộp gồm:")
    _components(pdf, view)
    pdf.para(f"2. Số lượng hồ sơ: {view.text('sets', '01')} (bộ)")
    days = view.get("procedure.processing_days")
    pdf.para(f"3. Thời gian giải quyết hồ sơ theo quy định: {DOTS if days is None else days} ngày làm việc")
    pdf.para(f"4. Thời gian nhận hồ sơ: {vn_datetime(received)}")
    pdf.para(f"5. Thời gian trả kết quả giải quyết hồ sơ: {vn_datetime(due)}")
    pdf.para("6. Phí, lệ phí:")
    _fees(pdf, view)
    delivery = view.get("result_delivery")
    pdf.para(
        f"7. Đăng ký nhận kết quả: {DOTS if delivery is None else CHANNELS.get(delivery, nfc(delivery))}"
    )
    if view.get("log_book") is not None or view.get("log_number") is not None:
        book, number = view.text("log_book"), view.text("log_number")
        pdf.para(f"Vào Sổ theo dõi hồ sơ, Quyển số: {book}, Số thứ tự: {number}")
    pdf.signatures(
        [("NGƯỜI NỘP HỒ SƠ", view.text("applicant.name", "")), ("NGƯỜI TIẾP NHẬN HỒ SƠ", _officer(view))]
    )


def _officer(view: View) -> str:
    return view.text("officer", "")


def _supplement(pdf: DocumentPdf, view: View) -> None:
    items = view.need("supplement_items")
    if not isinstance(items, list | tuple):
        raise fail("supplement_items", "must be a list")
    _intro(pdf, view, contacts=False)
    _received_line(pdf, view)
    pdf.para(
        "Sau khi xem xét thành phần hồ sơ, đề nghị Ông/Bà bổ sung, hoàn thiện hồ sơ gồm những nội dung sau:"
    )
    for number, item in enumerate(items, 1):
        pdf.para(f"{number}. {nfc(item)}", indent=5)
    if view.get("supplement_reason") is not None:
        pdf.para(f"Lý do: {view.text('supplement_reason')}")
    pdf.para(
        "Trong quá trình hoàn thiện hồ sơ nếu có vướng mắc, Ông/Bà liên hệ với "
        f"{view.text('officer')}, số điện thoại {view.text('procedure.agency.phone')} để được hướng dẫn."
    )
    pdf.signatures([("", ""), ("NGƯỜI HƯỚNG DẪN", _officer(view))])


def _refusal(pdf: DocumentPdf, view: View) -> None:
    reason = nfc(view.need("refusal_reason"))
    _intro(pdf, view, contacts=False)
    _received_line(pdf, view)
    pdf.para(
        f"Qua nghiên cứu, đối chiếu với các quy định hiện hành, {DESK} {_agency(view)} từ chối tiếp nhận, "
        "giải quyết hồ sơ này với lý do cụ thể như sau:"
    )
    pdf.para(reason, indent=5)
    pdf.para("Xin thông báo cho Ông/Bà được biết và thực hiện./.")
    pdf.signatures([("", ""), ("NGƯỜI TIẾP NHẬN", _officer(view))])


def _apology(pdf: DocumentPdf, view: View) -> None:
    reason = nfc(view.need("apology.reason"))
    new_due = view.needed_moment("apology.new_due_at")
    received, due = view.moment("received_at"), view.moment("due_at")
    agency, name = _agency(view), view.text("applicant.name")
    pdf.para(f"Kính gửi: {name}", bold=True, align="C")
    pdf.para(
        f"{agency} đã tiếp nhận giải quyết hồ sơ đề nghị {view.text('procedure.name')} của Ông/Bà "
        f"vào {DOTS if received is None else vn_date(received)}."
    )
    pdf.para(f"Mã hồ sơ: {view.text('code')}.")
    pdf.para(f"Thời hạn giải quyết hồ sơ theo quy định: {DOTS if due is None else vn_datetime(due)}.")
    pdf.para(f"Tuy nhiên đến nay, {agency} chưa trả kết quả giải quyết hồ sơ của Ông/Bà.")
    pdf.para(f"Lý do: {reason}")
    pdf.para(
        f"Sự chậm trễ này đã gây phiền hà cho Ông/Bà. {agency} xin lỗi Ông/Bà và hẹn trả kết quả "
        f"vào {vn_datetime(new_due)}."
    )
    pdf.para("Xin trân trọng cảm ơn sự hợp tác của Ông/Bà./.")
    pdf.signatures([("", ""), ("THỦ TRƯỞNG CƠ QUAN", view.text("apology.signer", ""))])
    pdf.para("Nơi nhận:\n- Như trên;\n- Lưu: VT.")


def _control_slip(pdf: DocumentPdf, view: View) -> None:
    pdf.para(f"Mã hồ sơ: {view.text('code')}", bold=True)
    pdf.para(f"(Kèm theo Giấy tiếp nhận hồ sơ và hẹn trả kết quả mã số: {view.text('code')})")
    pdf.para(f"Tên thủ tục hành chính: {view.text('procedure.name')}")
    pdf.para(f"Tổ chức, cá nhân nộp hồ sơ: {view.text('applicant.name')}")
    pdf.para(f"Cơ quan (bộ phận) giải quyết hồ sơ: {_agency(view)}")
    pdf.para(f"Cơ quan phối hợp giải quyết hồ sơ: {view.text('coordinating_agency')}")
    _received_line(pdf, view)
    due = view.moment("due_at")
    if due is not None:
        pdf.para(f"Thời gian hẹn trả kết quả: {vn_datetime(due)}")
    rows = []
    for number, hop in enumerate(view.records("handovers"), 1):
        at = hop.moment("at")
        rows.append(
            [
                str(number),
                ROLES.get(hop.get("from_role"), hop.text("from_role", "")),
                ROLES.get(hop.get("to_role"), hop.text("to_role", "")),
                hop.text("actor", ""),
                "" if at is None else vn_short(at),
                RESULTS.get(hop.get("result"), hop.text("result", "")),
                hop.text("note", ""),
            ]
        )
    headings = [
        "STT",
        "Bên giao",
        "Bên nhận",
        "Người thực hiện",
        "Thời gian giao, nhận",
        "Kết quả",
        "Ghi chú",
    ]
    pdf.grid(headings, rows or [[""] * 7], (6, 17, 17, 16, 17, 12, 15))


def _log_row(number: int, row: View) -> list[str]:
    def when(path: str) -> str:
        moment = row.moment(path)
        return "" if moment is None else vn_short(moment)

    contact = ", ".join(t for t in (row.text("applicant.address", ""), row.text("applicant.phone", "")) if t)
    return [
        str(number),
        nfc(row.need("code")),
        row.text("procedure.name", ""),
        row.text("sets", "01"),
        row.text("applicant.name", ""),
        contact,
        row.text("procedure.agency.name", ""),
        when("received_at"),
        when("due_at"),
        when("decided_at"),
        when("returned_at"),
        row.text("note", ""),
    ]


def _dossier_log(pdf: DocumentPdf, view: View) -> None:
    entries = view.records("entries") if view.get("entries") is not None else [view]
    rows = [_log_row(number, entry) for number, entry in enumerate(entries, 1)]
    headings = [
        "STT",
        "Mã hồ sơ",
        "Tên thủ tục hành chính",
        "Số lượng hồ sơ (bộ)",
        "Tên cá nhân, tổ chức",
        "Địa chỉ, số điện thoại",
        "Cơ quan chủ trì giải quyết",
        "Nhận hồ sơ",
        "Hẹn trả kết quả",
        "Ngày có kết quả",
        "Ngày trả kết quả",
        "Ghi chú",
    ]
    pdf.grid(headings, rows, (9, 45, 30, 12, 24, 28, 26, 19, 19, 19, 19, 12), size=8)


_BUILDERS: dict[str, Callable[[DocumentPdf, View], None]] = {
    "receipt": _receipt,
    "supplement_request": _supplement,
    "refusal": _refusal,
    "apology": _apology,
    "control_slip": _control_slip,
    "dossier_log": _dossier_log,
}


def render_form(form: Mapping[str, Any], data: Mapping[str, Any] | None = None) -> bytes:
    """Render a declaration form as PDF: blank dotted lines when ``data`` is None, else pre-filled.

    ``form`` is a form definition {``id``, ``title``\\*, ``schema``\\* {``properties``\\* {name: {``title``,
    ``type``, ``format``, ``enum``, ``properties``}}, ``required``}, ``addressee``, ``issued_at``}.  Fields
    print in the schema's order with their ``title`` as label ("(*)" marks required ones); a nested object
    prints as an indented group.  Blank: dots, "□ Có □ Không" for booleans, boxes for enums, "ngày … tháng
    … năm …" for dates.  Filled: the value (Vietnamese dates, "Có"/"Không"), dots where it is missing.  The
    PDF creation date is ``issued_at`` when given, else a fixed date, so output is deterministic.

    Raises:
        ValidationError: ``title`` or ``schema.properties`` missing, or a malformed value.
    """
    if not isinstance(form, Mapping):
        raise fail("form", "must be a mapping")
    if data is not None and not isinstance(data, Mapping):
        raise fail("data", "must be a mapping")
    spec = View(nfc_deep(form))
    title = nfc(spec.need("title"))
    properties = spec.need("schema.properties")
    if not isinstance(properties, Mapping):
        raise fail("schema.properties", "must be a mapping")
    issued = spec.moment("issued_at") or FORM_DATE
    pdf = DocumentPdf(created=issued, title=title, footer=f"Mẫu {spec.text('id', '')}".strip())
    pdf.motto()
    pdf.title_block(title.upper())
    if spec.get("addressee") is not None:
        pdf.para(f"Kính gửi: {spec.text('addressee')}", align="C")
        pdf.ln(2)
    values = None if data is None else nfc_deep(data)
    _fields(pdf, properties, spec.get("schema.required") or [], values, "schema.properties.", 0)
    pdf.ln(4)
    pdf.para("……, ngày …… tháng …… năm ……", align="R")
    pdf.signatures([("", ""), ("NGƯỜI KHAI", "")])
    return pdf.render()


def _fields(
    pdf: DocumentPdf,
    properties: Mapping[str, Any],
    required: Any,
    values: Mapping[str, Any] | None,
    where: str,
    indent: float,
) -> None:
    """Print each property of a schema level, recursing into objects that declare their own properties."""
    for key, prop in properties.items():
        if not isinstance(prop, Mapping):
            raise fail(f"{where}{key}", "must be a mapping")
        label = nfc(prop.get("title") or key) + (" (*)" if key in required else "")
        value = None if values is None else values.get(key)
        if prop.get("type") == "object" and isinstance(prop.get("properties"), Mapping):
            pdf.para(f"{label}:", bold=True, indent=indent)
            inner = value if isinstance(value, Mapping) else ({} if values is not None else None)
            _fields(pdf, prop["properties"], prop.get("required") or [], inner, f"{where}{key}.", indent + 5)
        elif value is None or value in ("", []):
            blank_field(pdf, label, prop, indent)
        else:
            pdf.para(f"{label}: {value_text(prop, value, key)}", indent=indent)
