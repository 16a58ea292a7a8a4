"""The sandbox gateway inside the real app, on the per-backend test database, with a real IPN receiver.

The receiver is a threaded HTTP server on 127.0.0.1 that checks each IPN's signature the way a merchant
must (``vnpay_protocol.verify``) and answers ``{"RspCode": ...}``: the gateway reaches it over real HTTP.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from api import create_app
from engine.facade import Engine
from motcua.settings import Settings
from payments import vnpay_protocol as vnp
from sandbox_gateway.ipn import IpnSender
from sandbox_gateway.views import EXTENSION
from tests.dossiers.conftest import vn

TMN_CODE = "MOTCUA01"
SECRET = "bí-mật-thử-nghiệm-" + "9f3c" * 12
PAY_PATH = "/sandbox/vnpay/paymentv2/vpcpay.html"
CHOICE_PATH = "/sandbox/vnpay/paymentv2/choice"
QUERY_PATH = "/sandbox/vnpay/merchant_webapi/api/transaction"
RETURN_URL = "http://127.0.0.1:8000/thanh-toan/ket-qua?kenh=web"
ORDER_INFO = "Nộp phí hồ sơ 000.00.14.H26-260302-0001"


class IpnReceiver:
    """A merchant's IPN endpoint on a real threaded server: records every call, checks its signature.

    ``answers`` are the RspCodes to give, in order (then 00); a bad signature always gets 97.
    """

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.calls: list[dict[str, str]] = []
        self.answers: list[str] = []
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/merchant/ipn"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @Request.application
    def wsgi(self, request: Request) -> Response:
        params = request.args.to_dict(flat=True)
        self.calls.append(params)
        if request.method != "GET" or request.path != "/merchant/ipn":
            return Response("no", status=405)
        if not vnp.verify(params, self.secret):
            rsp = vnp.RSP_BAD_CHECKSUM
        else:
            rsp = self.answers.pop(0) if self.answers else vnp.RSP_CONFIRMED
        answer = {"RspCode": rsp, "Message": vnp.RSP_MESSAGES[rsp]}
        return Response(json.dumps(answer), mimetype="application/json")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@dataclass
class Sandbox:
    """The app with the gateway mounted, its clock and engine, and the merchant's IPN receiver."""

    app: Flask
    client: FlaskClient
    engine: Engine
    clock: Any
    receiver: IpnReceiver

    def payment(self, txn_ref: str = "MC-0001", amount: int = 150_000, **overrides: str) -> dict[str, str]:
        """Return the parameters of a payment URL as our provider builds them (unsigned)."""
        now = self.clock.now()
        params = {
            "vnp_Version": "2.1.0",
            "vnp_Command": "pay",
            "vnp_TmnCode": TMN_CODE,
            "vnp_Amount": vnp.vnp_amount(amount),
            "vnp_CurrCode": "VND",
            "vnp_TxnRef": txn_ref,
            "vnp_OrderInfo": ORDER_INFO,
            "vnp_OrderType": "other",
            "vnp_Locale": "vn",
            "vnp_ReturnUrl": RETURN_URL,
            "vnp_IpAddr": "203.0.113.7",
            "vnp_CreateDate": vnp.vnp_time(now),
            "vnp_ExpireDate": vnp.vnp_time(now + timedelta(minutes=15)),
        }
        params.update(overrides)
        return params

    def open(self, params: dict[str, str] | None = None, secret: str = SECRET) -> Any:
        """GET the payment page for signed ``params`` (default: ``payment()``)."""
        params = params if params is not None else self.payment()
        return self.client.get(f"{PAY_PATH}?{vnp.signed_query(params, secret)}")

    def choose(self, page: Any, choice: str, **form: str) -> Any:
        """POST the choice offered on a payment page (the form's hidden fields, or ``form`` overrides)."""
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
        fields.update(choice=choice, **form)
        return self.client.post(CHOICE_PATH, data=fields)

    def query(self, txn_ref: str, transaction_date: str, secret: str = SECRET, **overrides: str) -> Any:
        """POST a signed ``querydr`` request; return the response."""
        body = {
            "vnp_RequestId": uuid.uuid4().hex,
            "vnp_Version": "2.1.0",
            "vnp_Command": "querydr",
            "vnp_TmnCode": TMN_CODE,
            "vnp_TxnRef": txn_ref,
            "vnp_OrderInfo": f"Truy van giao dich {txn_ref}",
            "vnp_TransactionDate": transaction_date,
            "vnp_CreateDate": vnp.vnp_time(self.clock.now()),
            "vnp_IpAddr": "127.0.0.1",
        }
        body.update(overrides)
        body["vnp_SecureHash"] = vnp.query_checksum(body, vnp.QUERY_REQUEST_FIELDS, secret)
        return self.client.post(QUERY_PATH, json=body)

    def transactions(self) -> list[dict[str, Any]]:
        """The gateway's own books."""
        with self.engine.store.unit_of_work(write=False) as uow:
            rows = uow.conn.exec_driver_sql("SELECT * FROM sandbox_transactions ORDER BY id").mappings()
            return [dict(row) for row in rows]


def sandbox_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "scheduler": False,
        "payment_sandbox": True,
        "vnpay_tmn_code": TMN_CODE,
        "vnpay_hash_secret": SECRET,
    }
    values.update(overrides)
    return Settings(**values)


def fast_ipn(app: Flask, **options: Any) -> None:
    """Give the app's gateway an IPN sender with short pauses, so that retries do not slow the suite."""
    app.extensions[EXTENSION].ipn = IpnSender(**{"timeout": 5.0, "attempts": 3, "backoff": 0.01, **options})


@pytest.fixture
def receiver() -> Iterator[IpnReceiver]:
    server = IpnReceiver()
    yield server
    server.close()


@pytest.fixture
def sandbox(make_engine: Callable[..., Engine], clock: Any, db_url: str, receiver: IpnReceiver) -> Sandbox:
    clock.current = vn(2026, 3, 2, 9, 0)
    engine = make_engine()
    app = create_app(sandbox_settings(db_url, sandbox_ipn_url=receiver.url), engine=engine, TESTING=True)
    fast_ipn(app)
    return Sandbox(app, app.test_client(), engine, clock, receiver)


def location_query(response: Any) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    return dict(parse_qsl(urlsplit(response.headers["Location"]).query, keep_blank_values=True))
