"""The official documents of a dossier (Circular 01/2018/TT-VPCP forms 01-06), built from its stored state;
and the result document the leader's approval produces (``render_result``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.errors import ConflictError
from handlers.document_layout import DocumentPdf, nfc, to_moment, vn_date, vn_datetime
from handlers.documents import render_document

from .status import Status

_ROLES = {"reception": "desk", "specialist": "specialist", "leader": "leader", "applicant": "applicant"}
_CHANNELS = {1: "in_person", 2: "online", 3: "post"}

# Which documents exist at which point of a dossier's life.
_AVAILABLE = {
    "receipt": lambda d: d["received_at"] is not None,
    "supplement_request": lambda d: bool(d["supplement_items"]),
    "refusal": lambda d: d["status"] == Status.NOT_RECEIVED,
    "apology": lambda d: d["apology"] is not None,
    "control_slip": lambda d: True,
    "dossier_log": lambda d: True,
}
# What each document is called on screens (the forms of Circular 01/2018/TT-VPCP).
DOCUMENT_TITLES = {
    "receipt": "Giấy tiếp nhận hồ sơ và hẹn trả kết quả (Mẫu 01)",
    "supplement_request": "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ (Mẫu 02)",
    "refusal": "Phiếu từ chối tiếp nhận giải quyết hồ sơ (Mẫu 03)",
    "apology": "Phiếu xin lỗi và hẹn lại ngày trả kết quả (Mẫu 04)",
    "control_slip": "Phiếu kiểm soát quá trình giải quyết hồ sơ (Mẫu 05)",
}


def available_documents(dossier: Mapping[str, Any]) -> list[str]:
    """The kinds of document (of ``DOCUMENT_TITLES``) that exist for ``dossier`` now, in form order."""
    return [kind for kind in DOCUMENT_TITLES if _AVAILABLE[kind](dossier)]


def _components(procedure: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for component in procedure.get("components") or ():
        copies = component.get("copies") or {}
        for original, count in ((True, copies.get("original", 0)), (False, copies.get("copy", 0))):
            if count:
                rows.append({"name": component["name"], "copies": count, "original": original})
    return rows


def _handovers(dossier: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "at": h["at"],
            "from_role": _ROLES.get(h["from_role"] or "", h["from_role"]),
            "to_role": _ROLES.get(h["to_role"] or "", h["to_role"]),
            "actor": h["actor"],
            "result": h["result"],
            "note": h["note"],
        }
        for h in dossier.get("handovers") or ()
    ]


def document_data(
    dossier: Mapping[str, Any], procedure: Mapping[str, Any], process_data: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Return what the document renderer needs about one dossier (see ``handlers.documents``)."""
    apology = dossier.get("apology")
    return {
        "code": dossier["code"],
        "issued_at": now,
        "procedure": {
            "code": procedure.get("code"),
            "name": procedure.get("name"),
            "agency": procedure.get("agency") or {},
        },
        "applicant": dossier.get("applicant") or {},
        "channel": _CHANNELS.get(dossier.get("channel") or 0),
        "received_at": dossier.get("received_at"),
        "due_at": dossier.get("due_at"),
        "components": _components(procedure),
        "fees": [
            {"description": f.get("description"), "amount": f.get("amount")}
            for f in process_data.get("fees") or ()
            if f.get("amount") is not None
        ],
        "supplement_items": dossier.get("supplement_items") or [],
        "refusal_reason": dossier.get("refusal_reason"),
        "apology": (
            {"reason": apology["reason"], "new_due_at": datetime.fromisoformat(apology["new_due_at"])}
            if apology
            else None
        ),
        "handovers": _handovers(dossier),
    }


def render(
    kind: str,
    dossier: Mapping[str, Any],
    procedure: Mapping[str, Any],
    process_data: Mapping[str, Any],
    now: datetime,
) -> bytes:
    """Render one document of a dossier as PDF.

    Raises:
        ConflictError: the document does not exist yet at this point of the dossier's life.
        ValidationError: unknown kind (from the renderer).
    """
    available = _AVAILABLE.get(kind)
    if available is not None and not available(dossier):
        raise ConflictError(f"Dossier {dossier['code']} has no {kind} document at this stage", kind=kind)
    return render_document(kind, document_data(dossier, procedure, process_data, now))


RESULT_TITLE = "KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH"


def render_result(
    dossier: Mapping[str, Any],
    procedure: Mapping[str, Any],
    result_text: str,
    approval: Mapping[str, Any],
) -> bytes:
    """Render the result document of an approved dossier (the electronic result) as PDF.

    Args:
        dossier: the dossier (``code``, ``applicant``).
        procedure: its procedure record (``code``, ``name``, ``agency``).
        result_text: what was decided: the specialist's draft result the leader approved.
        approval: ``at`` (the approval time, also the document date), ``leader`` (the name that signs),
            ``note`` (the leader's note, optional).

    Returns:
        The PDF bytes; the same arguments always give the same bytes (so the SHA-256 is reproducible).
    """
    at = to_moment(approval["at"], "approval.at")
    code = nfc(dossier["code"])
    applicant = dossier.get("applicant") or {}
    agency = procedure.get("agency") or {}
    pdf = DocumentPdf(created=at, title=RESULT_TITLE, footer=f"Kết quả điện tử - Mã hồ sơ: {code}")
    pdf.national_header(
        [nfc(agency.get("parent") or ""), nfc(agency.get("name") or "")],
        f"Số: {code}/KQ",
        f"{nfc(agency.get('place') or '……')}, {vn_date(at)}",
    )
    pdf.title_block(RESULT_TITLE)
    pdf.para(f"Mã hồ sơ: {code}", bold=True)
    name = nfc(procedure.get("name") or "")
    if procedure.get("code"):
        name += f" (mã thủ tục: {nfc(procedure['code'])})"
    pdf.para(f"Thủ tục hành chính: {name}")
    pdf.para(f"Tổ chức, cá nhân đề nghị: {nfc(applicant.get('name') or '')}")
    if applicant.get("id_number"):
        pdf.para(f"Số định danh cá nhân/Mã số doanh nghiệp: {nfc(applicant['id_number'])}")
    if applicant.get("address"):
        pdf.para(f"Địa chỉ: {nfc(applicant['address'])}")
    pdf.para("Kết quả giải quyết:", bold=True)
    pdf.para(nfc(result_text) or "……", indent=5)
    if approval.get("note"):
        pdf.para(f"Ý kiến của lãnh đạo: {nfc(approval['note'])}")
    pdf.para(f"Phê duyệt lúc {vn_datetime(at)}.")
    pdf.signatures([("", ""), ("LÃNH ĐẠO PHÊ DUYỆT", nfc(approval.get("leader") or ""))])
    return pdf.render()
