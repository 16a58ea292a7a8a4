"""Online payment of fees: the applicant starts a payment, VNPay notifies (IPN) and returns the browser.

The IPN endpoint takes no login: the merchant signature is its authentication, and whatever arrives, it
answers HTTP 200 with VNPay's ``{"RspCode", "Message"}``.  The return page only shows what VNPay says;
only the IPN (or the reconciliation job) changes a payment.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, render_template_string, request
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields

from dossiers.service import DossierService
from engine.facade import Engine
from handlers.document_layout import vn_money
from motcua.settings import Settings
from payments.providers import PaymentUnavailableError
from payments.service import PaymentService

from .auth import principal
from .errors import problem

blp = Blueprint(
    "payments", __name__, url_prefix="/api/v1", description="Thanh toán trực tuyến: fees paid online (VNPay)"
)
VNPAY_PARAMS = (
    "vnp_TmnCode",
    "vnp_Amount",
    "vnp_BankCode",
    "vnp_BankTranNo",
    "vnp_CardType",
    "vnp_PayDate",
    "vnp_OrderInfo",
    "vnp_TransactionNo",
    "vnp_ResponseCode",
    "vnp_TransactionStatus",
    "vnp_TxnRef",
    "vnp_SecureHashType",
    "vnp_SecureHash",
)
UNAVAILABLE = {"description": "Online payment is not configured or not reachable now"}
UNVERIFIED = "Hệ thống sẽ cập nhật hồ sơ khi cổng thanh toán xác nhận giao dịch."


def service() -> PaymentService:
    """Return the payment service of this app."""
    found: PaymentService = current_app.extensions["motcua.payments"]
    return found


def install(app: Flask, api: Api, settings: Settings, engine: Engine, dossiers: DossierService) -> None:
    """Build the payment service from ``settings``, register the routes and the 503 of a missing provider."""
    from motcua.wiring import build_payments

    app.extensions["motcua.payments"] = build_payments(engine, dossiers, settings)
    app.register_error_handler(PaymentUnavailableError, _unavailable)
    api.register_blueprint(blp)


def _unavailable(error: PaymentUnavailableError) -> Response:
    return problem(503, "Payment unavailable", error.message, {"Retry-After": "300"}, code=error.code)


# -- schemas --------------------------------------------------------------------------------------------
class LineSchema(Schema):
    code = fields.String(allow_none=True)
    description = fields.String(required=True)
    amount = fields.Integer(required=True, metadata={"description": "VND, whole dong"})


class StartedSchema(Schema):
    payment_url = fields.String(required=True, metadata={"description": "send the browser here to pay"})
    txn_ref = fields.String(required=True)
    amount = fields.Integer(required=True, metadata={"description": "VND: the fee lines, with postage"})
    currency = fields.String(required=True)
    lines = fields.List(fields.Nested(LineSchema), required=True)
    expires_at = fields.DateTime(required=True, metadata={"description": "pay before this time"})
    status = fields.String(required=True)
    reused = fields.Boolean(
        required=True, metadata={"description": "true: the pending attempt started earlier, given again"}
    )


class AttemptSchema(Schema):
    txn_ref = fields.String(required=True)
    provider = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    lines = fields.List(fields.Nested(LineSchema))
    status = fields.String(required=True, metadata={"description": "pending | paid | failed | expired"})
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    settled_at = fields.DateTime(allow_none=True)
    settled_by = fields.String(allow_none=True, metadata={"description": "ipn | reconcile"})
    response_code = fields.String(allow_none=True)
    transaction_no = fields.String(allow_none=True)
    bank_code = fields.String(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    process_advanced = fields.Boolean(required=True)
    receipt_number = fields.String(allow_none=True)
    payment_url = fields.String(allow_none=True, metadata={"description": "the applicant's, while pending"})
    note = fields.String(allow_none=True)


class ReceiptSchema(Schema):
    number = fields.String(required=True, metadata={"description": "BL-<yyyy>-<nnnnnnn>"})
    amount = fields.Integer(required=True)
    lines = fields.List(fields.Nested(LineSchema), required=True)
    payer = fields.String(required=True)
    issued_at = fields.DateTime(required=True)
    txn_ref = fields.String(required=True)


class PaymentsSchema(Schema):
    dossier_code = fields.String(required=True)
    attempts = fields.List(fields.Nested(AttemptSchema), required=True)
    receipt = fields.Nested(ReceiptSchema, allow_none=True)


class IpnAnswerSchema(Schema):
    RspCode = fields.String(required=True, metadata={"description": "00, 01, 02, 04, 97 or 99"})
    Message = fields.String(required=True)


def _query_parameters() -> list[dict[str, Any]]:
    return [{"in": "query", "name": name, "schema": {"type": "string"}} for name in VNPAY_PARAMS]


_FORM_BODY = {
    "required": False,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {name: {"type": "string"} for name in VNPAY_PARAMS}}
        }
    },
}


# -- the applicant ----------------------------------------------------------------------------------------
@blp.route("/dossiers/<string:code>/payments")
class DossierPayments(MethodView):
    @blp.response(201, StartedSchema)
    @blp.alt_response(503, **UNAVAILABLE)
    @blp.doc(security=[{"bearer": []}])
    def post(self, code: str) -> dict[str, Any]:
        """Start paying the dossier's fees online (its applicant, while the dossier waits for payment:
        status 6); answers the signed VNPay URL to send the browser to.  A pending attempt with time left is
        given again; a paid dossier is refused (409)."""
        return service().start_payment(code, principal(), request.remote_addr or "127.0.0.1")

    @blp.response(200, PaymentsSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self, code: str) -> dict[str, Any]:
        """The dossier's payment attempts, oldest first, and its e-receipt (whoever may see the dossier)."""
        return service().payments(code, principal())


@blp.route("/dossiers/<string:code>/receipt")
class Receipt(MethodView):
    @blp.response(200, content_type="application/pdf")
    @blp.doc(security=[{"bearer": []}])
    def get(self, code: str) -> Response:
        """Download the e-receipt of the dossier's fees as PDF (Biên lai thu phí, lệ phí điện tử)."""
        number, pdf = service().receipt_pdf(code, principal())
        disposition = f'inline; filename="{number}.pdf"'
        return Response(pdf, mimetype="application/pdf", headers={"Content-Disposition": disposition})


# -- VNPay ------------------------------------------------------------------------------------------------
@blp.route("/payments/vnpay/ipn")
class VNPayIpn(MethodView):
    @blp.response(200, IpnAnswerSchema)
    @blp.doc(security=[], parameters=_query_parameters())
    def get(self) -> dict[str, str]:
        """VNPay's payment notification (IPN), signed by the merchant secret: no login.  Always HTTP 200
        with RspCode 00 (handled), 01 (order not found), 02 (already settled), 04 (invalid amount),
        97 (invalid signature) or 99 (other error)."""
        return _answer(request.args)

    @blp.response(200, IpnAnswerSchema)
    @blp.doc(security=[], parameters=_query_parameters(), requestBody=_FORM_BODY)
    def post(self) -> dict[str, str]:
        """The IPN as a form post (or with the parameters in the query string); answered as the GET."""
        params = request.args.to_dict() | request.form.to_dict()
        return _answer(params)


def _answer(params: Any) -> dict[str, str]:
    code, message = service().handle_ipn(params, "vnpay")
    return {"RspCode": code, "Message": message}


@blp.route("/payments/vnpay/return")
class VNPayReturn(MethodView):
    @blp.response(200, content_type="text/html")
    @blp.alt_response(400, description="The parameters are not validly signed", content_type="text/html")
    @blp.doc(security=[], parameters=_query_parameters())
    def get(self) -> Response:
        """The page VNPay returns the browser to: shows the verified result and changes nothing (the IPN is
        what records the payment)."""
        try:
            result = service().describe_return(request.args)
        except PaymentUnavailableError as exc:
            # Nothing to verify with; the page only informs, and the IPN or the job will settle the payment.
            current_app.logger.warning("return page: %s", exc.message)
            return _page(200, "Chưa xác minh được kết quả thanh toán", UNVERIFIED, {})
        if not result["valid"]:
            detail = "Dữ liệu trả về không hợp lệ (sai chữ ký). Trang này không ghi nhận kết quả thanh toán."
            return _page(400, "Dữ liệu không hợp lệ", detail, {})
        title = "Thanh toán thành công" if result["paid"] else "Thanh toán không thành công"
        return _page(200, title, str(result["reason"]), result)


_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="{{ url_for('web.static', filename='css/site.css') }}"></head>
<body><main class="wrap">
<h1>{{ title }}</h1>
<p>{{ detail }}</p>
{% if result.get("txn_ref") %}<dl class="facts">
<dt>Mã hồ sơ</dt><dd>{{ result.get("dossier_code") or "(không rõ)" }}</dd>
<dt>Mã giao dịch</dt><dd>{{ result["txn_ref"] }}</dd>
<dt>Số tiền</dt><dd>{{ amount }}</dd>
<dt>Trạng thái đã ghi nhận</dt><dd>{{ recorded }}</dd>
</dl>
<p>Kết quả cuối cùng do cổng thanh toán xác nhận trực tiếp với hệ thống; hồ sơ sẽ được cập nhật.</p>
{% endif %}
<p>{% if result.get("dossier_code") %}
<a class="button" href="{{ url_for('web.dossier', code=result['dossier_code']) }}">
Xem hồ sơ {{ result["dossier_code"] }}</a>{% endif %}
<a class="button button-secondary" href="{{ url_for('web.my_dossiers') }}">Hồ sơ của tôi</a></p>
</main></body></html>
"""
_RECORDED = {
    "pending": "Đang chờ xác nhận từ cổng thanh toán",
    "paid": "Đã thanh toán",
    "failed": "Không thành công",
    "expired": "Hết hạn",
}


def _page(status: int, title: str, detail: str, result: dict[str, Any]) -> Response:
    amount = vn_money(result["amount"]) if result.get("amount") is not None else "(không rõ)"
    recorded = _RECORDED.get(str(result.get("recorded")), "Chưa ghi nhận")
    html = render_template_string(
        _PAGE, title=title, detail=detail, result=result, amount=amount, recorded=recorded
    )
    return Response(html, status=status, mimetype="text/html")
