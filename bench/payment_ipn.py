"""Cost of settling a level-4 payment from the bank's IPN, against delivering the bare message, in one run.

Level-4 judicial-record dossiers are brought to the payment wait (status 6) through the dossier service, then
half are settled through ``PaymentService.handle_ipn`` (signature check, order lookup, amount check, the
conditional pending->paid update, the gapless e-receipt number, the notification log and ``payment.confirmed``
delivered in the same transaction) and half by ``Engine.send_message("payment.confirmed")`` alone, in
alternating order so that both see the same machine.  Prints p50/p99 per settlement and the ratio.

    .venv/bin/python bench/payment_ipn.py                                   # SQLite file in a temp dir
    .venv/bin/python bench/payment_ipn.py --dossiers 200 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test   # a fresh schema, dropped after
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from dossiers.service import Submission  # noqa: E402
from motcua.schema import upgrade  # noqa: E402
from motcua.settings import Settings  # noqa: E402
from motcua.wiring import build_dossiers, build_engine, build_payments  # noqa: E402
from payments import vnpay_protocol as wire  # noqa: E402
from tests.dossiers.conftest import APPLICANT, LLTP_FORM  # noqa: E402

SCHEMA = "bench_payment_ipn"


@dataclass(frozen=True)
class Citizen:
    username: str = "citizen-bench"
    agency_code: str | None = None

    def has(self, *roles: str) -> bool:
        return "applicant" in roles


def database(url: str | None) -> tuple[str, str | None]:
    if url is None:
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db", None
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{SCHEMA}", url


def waiting_dossiers(dossiers, count: int) -> list[str]:
    codes = []
    for _ in range(count):
        code = dossiers.submit(
            "2.000488", Submission(applicant=APPLICANT, delivery_method="online"), owner=Citizen.username
        )["code"]
        for element, data, actor in (
            ("information", {}, Citizen.username),
            ("submit_online", {"form_data": LLTP_FORM}, Citizen.username),
            ("review", {"decision": "accept"}, "desk"),
        ):
            [task] = [t for t in dossiers.dossier(code)["tasks"] if t["element_id"] == element]
            dossiers.complete_task(task["id"], data, actor=actor)
        codes.append(code)
    return codes


def ipn_for(attempt: dict, secret: str, tmn_code: str) -> dict[str, str]:
    params = {
        "vnp_Amount": wire.vnp_amount(attempt["amount"]),
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": "VNP" + str(secrets.randbelow(10**8)),
        "vnp_CardType": "ATM",
        "vnp_OrderInfo": f"Thanh toan ho so {attempt['txn_ref']}",
        "vnp_PayDate": wire.vnp_time(attempt["expires_at"]),
        "vnp_ResponseCode": wire.PAID,
        "vnp_TmnCode": tmn_code,
        "vnp_TransactionNo": str(10**7 + secrets.randbelow(9 * 10**7)),
        "vnp_TransactionStatus": wire.TXN_SUCCESS,
        "vnp_TxnRef": attempt["txn_ref"],
    }
    return {**params, "vnp_SecureHash": wire.sign(params, secret)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--dossiers", type=int, default=100, help="dossiers per side")
    args = parser.parse_args()

    url, admin_url = database(args.database_url)
    secret, tmn = secrets.token_hex(32), "BENCH001"
    settings = Settings(
        database_url=url,
        workflows_dir=ROOT / "workflows",
        vnpay_tmn_code=tmn,
        vnpay_hash_secret=secret,
        scheduler=False,
    )
    engine = build_engine(settings)
    upgrade(engine.store.engine)
    from motcua.bundle import bundled_bpmn

    engine.deploy(bundled_bpmn(settings.workflows_dir), deployed_by="bench")
    dossiers = build_dossiers(engine, settings)
    dossiers.seed_catalogue(settings.workflows_dir)
    payments = build_payments(engine, dossiers, settings)
    try:
        began = time.perf_counter()
        codes = waiting_dossiers(dossiers, 2 * args.dossiers)
        took = time.perf_counter() - began
        print(f"{len(codes)} level-4 dossiers brought to the payment wait in {took:.1f} s")
        ipn_times, message_times, verify_times = [], [], []
        for i, code in enumerate(codes):
            if i % 2 == 0:
                attempt = payments.start_payment(code, Citizen(), "127.0.0.1")
                params = ipn_for(attempt, secret, tmn)
                t0 = time.perf_counter()
                wire.verify(params, secret)
                verify_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                answer = payments.handle_ipn(params)
                ipn_times.append(time.perf_counter() - t0)
                assert answer[0] == wire.RSP_CONFIRMED, answer
            else:
                t0 = time.perf_counter()
                engine.send_message("payment.confirmed", {"dossier_code": code}, {}, actor="bench")
                message_times.append(time.perf_counter() - t0)
            assert dossiers.dossier(code)["status"] == 4
    finally:
        engine.store.engine.dispose()
        if admin_url:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))

    def show(name: str, values: list[float]) -> float:
        ordered = sorted(values)
        p50, p99 = statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(f"{name:<46} p50 {p50 * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms   (n={len(values)})")
        return p50

    print(f"database: {url.split('?')[0]}")
    ipn = show("IPN settled (payment bookkeeping + message)", ipn_times)
    bare = show("bare payment.confirmed message (reference)", message_times)
    show("signature check alone", verify_times)
    print(f"ratio IPN / bare message (p50): {ipn / bare:.2f}")


if __name__ == "__main__":
    main()
