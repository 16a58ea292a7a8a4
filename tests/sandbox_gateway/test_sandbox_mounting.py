"""When the gateway is mounted, what it needs to start, and its IPN to the very server that serves it."""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from flask import jsonify, request
from sqlalchemy import select
from werkzeug.serving import make_server

from api import create_app
from engine.errors import ValidationError
from engine.facade import Engine
from motcua.settings import Settings
from payments import vnpay_protocol as vnp
from sandbox_gateway.tables import sandbox_transactions
from sandbox_gateway.views import EXTENSION
from tests.dossiers.conftest import vn
from tests.sandbox_gateway.conftest import (
    CHOICE_PATH,
    PAY_PATH,
    QUERY_PATH,
    SECRET,
    Sandbox,
    fast_ipn,
    sandbox_settings,
)


def test_the_sandbox_is_off_by_default(make_engine: Callable[..., Engine], db_url: str):
    settings = sandbox_settings(db_url, payment_sandbox=False)
    assert Settings.from_env({}).payment_sandbox is False
    client = create_app(settings, engine=make_engine(), TESTING=True).test_client()
    assert client.get(PAY_PATH).status_code == 404
    assert client.post(CHOICE_PATH).status_code == 404
    assert client.post(QUERY_PATH, json={}).status_code == 404
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("merchant", "missing"),
    [
        ({"vnpay_tmn_code": "MOTCUA01", "vnpay_hash_secret": None}, "MOTCUA_VNPAY_HASH_SECRET"),
        ({"vnpay_tmn_code": None, "vnpay_hash_secret": SECRET}, "MOTCUA_VNPAY_TMN_CODE"),
    ],
)
def test_the_sandbox_refuses_to_start_without_its_merchant(
    make_engine: Callable[..., Engine], db_url: str, merchant, missing
):
    with pytest.raises(ValidationError) as raised:
        create_app(sandbox_settings(db_url, **merchant), engine=make_engine(), TESTING=True)
    assert f"MOTCUA_PAYMENT_SANDBOX is on but {missing} not set" in raised.value.message
    assert missing in raised.value.errors


def test_the_ipn_to_the_same_server_does_not_deadlock(
    make_engine: Callable[..., Engine], clock: Any, db_url: str
):
    """The whole app on one real threaded server; its IPN endpoint writes to the database, as ours will."""
    clock.current = vn(2026, 3, 2, 9, 0)
    engine = make_engine()
    app = create_app(sandbox_settings(db_url), engine=engine, TESTING=True)
    fast_ipn(app, attempts=1, timeout=10.0)
    seen: list[tuple[str, str]] = []

    @app.get("/test/ipn")
    def ipn() -> Any:
        params = request.args.to_dict()
        assert vnp.verify(params, SECRET)
        # A write transaction, like the merchant's: it would wait on any lock the choice still held.
        with engine.store.unit_of_work() as uow:
            table = sandbox_transactions
            status = uow.conn.execute(
                select(table.c.status).where(table.c.txn_ref == params["vnp_TxnRef"])
            ).scalar_one()
        seen.append((params["vnp_TxnRef"], status))
        return jsonify(RspCode="00", Message="Confirm Success")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.extensions[EXTENSION].ipn_url = f"{base}/test/ipn"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sandbox = Sandbox(app, app.test_client(), engine, clock, receiver=None)  # type: ignore[arg-type]
        query = vnp.signed_query(sandbox.payment(), SECRET)
        with urllib.request.urlopen(f"{base}{PAY_PATH}?{query}", timeout=10) as page:
            html = page.read().decode("utf-8")
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))
        body = urllib.parse.urlencode({**fields, "choice": "paid"}).encode()
        status, location = _post_without_following(f"{base}{CHOICE_PATH}", body)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

    assert status == 302 and "vnp_ResponseCode=00" in location
    assert seen == [("MC-0001", "paid")]  # the IPN came after the outcome was committed
    assert sandbox.transactions()[0]["ipn_rsp_code"] == "00"


def _post_without_following(url: str, body: bytes) -> tuple[int, str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=body, method="POST"), timeout=30) as response:
            return response.status, response.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get("Location", "")
