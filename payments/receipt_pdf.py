"""The e-receipt of an online payment as PDF: "Biên lai thu phí, lệ phí điện tử", in Vietnamese.

Rendered from the stored receipt row (number, amount, lines, payer, time): the same receipt always gives the
same bytes.  Page furniture and DejaVu fonts are the official documents' (``handlers.document_layout``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from handlers.document_layout import DocumentPdf, nfc, to_moment, vn_date, vn_datetime, vn_money

TITLE = "BIÊN LAI THU PHÍ, LỆ PHÍ ĐIỆN TỬ"
PROVIDERS = {"vnpay": "Thanh toán trực tuyến qua cổng VNPay"}


def render_receipt(
    receipt: Mapping[str, Any], dossier: Mapping[str, Any], procedure: Mapping[str, Any]
) -> bytes:
    """Render an e-receipt.

    Args:
        receipt: the receipt row with its payment's ``txn_ref``, ``transaction_no`` and ``bank_code``.
        dossier: the dossier paid for (code, applicant).
        procedure: its procedure (name, code, agency).

    Returns:
        The PDF bytes.
    """
    issued = to_moment(receipt["issued_at"], "issued_at")
    agency = procedure.get("agency") or {}
    pdf = DocumentPdf(
        created=issued, title=TITLE, footer=f"Biên lai điện tử - Mã hồ sơ: {nfc(dossier['code'])}"
    )
    place = nfc(agency.get("place") or "……")
    header = [nfc(agency.get("parent") or ""), nfc(agency.get("name") or "")]
    pdf.national_header(header, f"Số: {nfc(receipt['number'])}", f"{place}, {vn_date(issued)}")
    pdf.title_block(TITLE, "(Thanh toán trực tuyến trên Cổng dịch vụ công)")
    applicant = dossier.get("applicant") or {}
    pdf.para(f"Số biên lai: {nfc(receipt['number'])}", bold=True)
    pdf.para(f"Người nộp: {nfc(receipt['payer'])}")
    if applicant.get("address"):
        pdf.para(f"Địa chỉ: {nfc(applicant['address'])}")
    pdf.para(f"Mã hồ sơ: {nfc(dossier['code'])}")
    pdf.para(f"Thủ tục: {nfc(procedure.get('name'))} (mã thủ tục: {nfc(procedure.get('code'))})")
    pdf.para("Nội dung thu:")
    rows = [
        [str(number), nfc(line.get("description")), vn_money(Decimal(str(line["amount"])))]
        for number, line in enumerate(receipt["lines"], 1)
    ]
    rows.append(["", "Tổng cộng", vn_money(Decimal(receipt["amount"]))])
    pdf.grid(["STT", "Nội dung", "Số tiền"], rows, (8, 62, 30))
    pdf.para(f"Số tiền đã nộp: {vn_money(Decimal(receipt['amount']))}", bold=True)
    channel = PROVIDERS.get(str(receipt.get("provider") or "vnpay"), "Thanh toán trực tuyến")
    pdf.para(f"Hình thức thanh toán: {channel}")
    pdf.para(f"Mã giao dịch: {nfc(receipt.get('txn_ref'))}")
    if receipt.get("transaction_no"):
        bank = f" (ngân hàng {nfc(receipt['bank_code'])})" if receipt.get("bank_code") else ""
        pdf.para(f"Số giao dịch tại cổng thanh toán: {nfc(receipt['transaction_no'])}{bank}")
    pdf.para(f"Thời gian thu: {vn_datetime(issued)}")
    pdf.ln(4)
    pdf.para("Biên lai điện tử có giá trị như biên lai giấy; tra cứu theo số biên lai và mã hồ sơ.")
    return pdf.render()
