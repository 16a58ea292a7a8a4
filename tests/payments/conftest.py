"""Payment fixtures: level-4 dossiers waiting for their fees, a payment service with a known merchant secret,
and notifications signed the way VNPay signs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from dossiers.catalogue import load_forms
from dossiers.service import DossierService, Submission
from dossiers.status import Status
from engine.facade import Engine
from engine.tables import audit
from motcua.bundle import bundled_bpmn
from payments import vnpay_protocol as wire
from payments.providers import HttpPost, ProviderRegistry
from payments.service import PaymentService
from payments.tables import payment_notifications, payments, receipts
from payments.vnpay import VNPayProvider
from tests.dossiers.conftest import APPLICANT, LLTP_FORM, WORKFLOWS, vn

JUDICIAL_RECORD = "2.000488"  # level 4, 200.000 đồng, agency 000.00.14.H26
TMN = "MOTCUA01"
SECRET = "S3CR3T-merchant-key-for-tests-only-0123456789"
PAY_URL = "https://sandbox.example.vn/paymentv2/vpcpay.html"
API_URL = "http://127.0.0.1:9/merchant_webapi/api/transaction"  # nothing listens on the discard port


@dataclass(frozen=True)
class Caller:
    """A principal as the access rules read it."""

    username: str
    agency_code: str | None = None
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"applicant"}))

    def has(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)


CITIZEN = Caller("citizen-1")


@dataclass
class Till:
    """The dossier service and the payment service on one engine, and a way to reach a payment."""

    engine: Engine
    dossiers: DossierService
    service: PaymentService
    clock: Any

    def waiting_dossier(self, delivery_method: str = "post", owner: str = CITIZEN.username) -> str:
        """Submit a level-4 dossier with its declaration and accept it: it then waits for payment."""
        submission = Submission(applicant=APPLICANT, delivery_method=delivery_method, form_data=LLTP_FORM)
        code = self.dossiers.submit(JUDICIAL_RECORD, submission, owner=owner)["code"]
        [review] = self.dossiers.dossier(code)["tasks"]
        self.dossiers.complete_task(review["id"], {"decision": "accept"}, actor="desk.officer")
        assert self.dossiers.dossier(code)["status"] == Status.FINANCIAL_OBLIGATION
        return code

    def start(self, code: str, caller: Caller = CITIZEN) -> dict[str, Any]:
        return self.service.start_payment(code, caller, "203.0.113.7")

    def snapshot(self, code: str) -> dict[str, Any]:
        """Everything an IPN could change about a dossier: its payments, status, instance version, audit."""
        dossier = self.dossiers.dossier(code)
        with self.engine.store.unit_of_work(write=False) as uow:
            conn = uow.conn
            rows = conn.execute(
                select(payments).where(payments.c.dossier_code == code).order_by(payments.c.id)
            )
            head = uow.instance_head(dossier["instance_id"])
            entries = conn.execute(
                select(func.count()).select_from(audit).where(audit.c.instance_id == dossier["instance_id"])
            ).scalar_one()
            issued = conn.execute(
                select(func.count()).select_from(receipts).where(receipts.c.dossier_code == code)
            ).scalar_one()
        return {
            "payments": [dict(row._mapping) for row in rows],
            "status": dossier["status"],
            "row_version": head.row_version,
            "audit": entries,
            "receipts": issued,
        }

    def notifications(self) -> list[dict[str, Any]]:
        with self.engine.store.unit_of_work(write=False) as uow:
            rows = uow.conn.execute(select(payment_notifications).order_by(payment_notifications.c.id))
            return [{**dict(row._mapping), "params": json.loads(row.params)} for row in rows]

    def audit_actions(self, code: str) -> list[str]:
        instance_id = self.dossiers.dossier(code)["instance_id"]
        return [entry["action"] for entry in self.engine.show(instance_id)["history"]]


def ipn(
    started: dict[str, Any], response: str = "00", status: str = "00", **overrides: Any
) -> dict[str, str]:
    """The parameters VNPay sends to the IPN URL about an attempt, signed with the merchant secret."""
    params = {
        "vnp_Amount": wire.vnp_amount(started["amount"]),
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": "VNP14422574",
        "vnp_CardType": "ATM",
        "vnp_OrderInfo": "Thanh toan phi le phi ho so",
        "vnp_PayDate": "20260302094512",
        "vnp_ResponseCode": response,
        "vnp_TmnCode": TMN,
        "vnp_TransactionNo": "14422574",
        "vnp_TransactionStatus": status,
        "vnp_TxnRef": started["txn_ref"],
    }
    params.update({key: str(value) for key, value in overrides.items()})
    params["vnp_SecureHashType"] = "HmacSHA512"
    params["vnp_SecureHash"] = wire.sign(params, SECRET)
    return params


def make_service(
    engine: Engine, dossiers: DossierService, http_post: HttpPost | None = None, api_url: str = API_URL
) -> PaymentService:
    """A payment service whose VNPay merchant is (TMN, SECRET)."""

    def vnpay() -> VNPayProvider:
        return VNPayProvider(TMN, SECRET, PAY_URL, api_url, http_post, clock=engine.now)

    return PaymentService(
        engine, dossiers, ProviderRegistry({"vnpay": vnpay}), public_url="https://dvc.example.vn"
    )


@pytest.fixture
def make_till(make_engine: Callable[..., Engine], clock: Any) -> Callable[..., Till]:
    """Build tills on the test database (on a known Monday, 09:00 in Viet Nam)."""
    clock.current = vn(2026, 3, 2, 9, 0)

    def make(http_post: HttpPost | None = None, api_url: str = API_URL) -> Till:
        engine = make_engine()
        dossiers = DossierService(engine, load_forms(WORKFLOWS / "forms"))
        return Till(engine, dossiers, make_service(engine, dossiers, http_post, api_url), clock)

    return make


@pytest.fixture
def till(make_till: Callable[..., Till]) -> Till:
    made = make_till()
    made.engine.deploy(bundled_bpmn(WORKFLOWS), deployed_by="seed")
    made.dossiers.seed_catalogue(WORKFLOWS)
    return made
