"""The sandbox gateway over HTTP, at VNPay's own paths under ``/sandbox/vnpay``.

- ``GET  /sandbox/vnpay/paymentv2/vpcpay.html?<signed vnp_ parameters>``: the payment page;
- ``POST /sandbox/vnpay/paymentv2/choice``: the customer's choice; sends the IPN, then redirects (302) the
  browser to the merchant's ``vnp_ReturnUrl`` with the same signed parameters;
- ``POST /sandbox/vnpay/merchant_webapi/api/transaction``: the ``querydr`` API (JSON).

Mounted by ``install`` only when ``MOTCUA_PAYMENT_SANDBOX`` is on.  Not part of the OpenAPI document: it is
the bank, not our API.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from engine.errors import ValidationError
from engine.facade import Engine
from motcua.settings import Settings

from .bank import SandboxBank
from .errors import AlreadyDecided, ChoiceForbidden, PaymentRefused
from .ipn import IpnSender, with_query
from .pages import SECURITY_HEADERS, message_page, pay_page
from .payment_request import Merchant

EXTENSION = "motcua.sandbox_gateway"
IPN_PATH = "/api/v1/payments/vnpay/ipn"

blp = Blueprint("sandbox_vnpay", __name__, url_prefix="/sandbox/vnpay")


@dataclass
class SandboxGateway:
    """What the views need: the bank's books, how IPNs are sent, and where to."""

    bank: SandboxBank
    ipn: IpnSender
    ipn_url: str


def install(app: Flask, settings: Settings, engine: Engine) -> None:
    """Mount the sandbox gateway on ``app`` when ``settings.payment_sandbox`` is on (do nothing otherwise).

    Raises:
        ValidationError: the sandbox is on but the merchant it serves (``MOTCUA_VNPAY_TMN_CODE``,
            ``MOTCUA_VNPAY_HASH_SECRET``) is not configured.
    """
    if not settings.payment_sandbox:
        return
    tmn_code, hash_secret = settings.vnpay_tmn_code, settings.vnpay_hash_secret
    if not tmn_code or not hash_secret:
        names = (("MOTCUA_VNPAY_TMN_CODE", tmn_code), ("MOTCUA_VNPAY_HASH_SECRET", hash_secret))
        missing = [name for name, value in names if not value]
        raise ValidationError(
            f"MOTCUA_PAYMENT_SANDBOX is on but {' and '.join(missing)} not set: the sandbox gateway "
            "needs the merchant it plays the bank for",
            {name: ["required when MOTCUA_PAYMENT_SANDBOX is on"] for name in missing},
        )
    merchant = Merchant(tmn_code, hash_secret)
    app.extensions[EXTENSION] = SandboxGateway(
        bank=SandboxBank(engine.store, engine.clock, [merchant]),
        ipn=IpnSender(),
        ipn_url=settings.sandbox_ipn_url or f"{settings.public_url}{IPN_PATH}",
    )
    app.register_blueprint(blp)


def _gateway() -> SandboxGateway:
    gateway: SandboxGateway = current_app.extensions[EXTENSION]
    return gateway


def _html(body: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update(SECURITY_HEADERS)
    return response


@blp.get("/paymentv2/vpcpay.html")
def payment_page() -> Response:
    """Show the bank's page for a signed payment URL (recording the transaction as pending)."""
    offer = _gateway().bank.open_payment(request.args.to_dict(flat=True))
    return _html(pay_page(offer, url_for(".choose")))


@blp.post("/paymentv2/choice")
def choose() -> BaseResponse:
    """Settle the transaction with the customer's choice, notify the merchant, send the browser back.

    The IPN is sent after the choice is committed and before the redirect, outside any transaction: its
    receiver may be this very server, and may need the database.
    """
    gateway = _gateway()
    form = request.form
    decision = gateway.bank.decide(form.get("transaction", ""), form.get("token", ""), form.get("choice", ""))
    rsp_code = gateway.ipn.send(with_query(gateway.ipn_url, decision.query))
    gateway.bank.record_ipn_answer(decision.transaction_id, rsp_code)
    response = redirect(with_query(decision.return_url, decision.query), 302)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blp.post("/merchant_webapi/api/transaction")
def transaction_api() -> Response:
    """The ``querydr`` API: the state of a transaction, as JSON signed with the merchant's secret."""
    return jsonify(_gateway().bank.query(request.get_json(silent=True)))


@blp.errorhandler(PaymentRefused)
def refused(error: PaymentRefused) -> Response:
    return _html(message_page("Giao dịch không thực hiện được", error.message, code=error.vnp_code), 400)


@blp.errorhandler(ChoiceForbidden)
def forbidden(error: ChoiceForbidden) -> Response:
    return _html(message_page("Yêu cầu không hợp lệ", error.message), 403)


@blp.errorhandler(AlreadyDecided)
def already_decided(error: AlreadyDecided) -> Response:
    page = message_page("Giao dịch đã được xử lý", error.message, txn_ref=error.txn_ref)
    return _html(page, 409)
