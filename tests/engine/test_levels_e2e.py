"""One dossier end to end through each bundled level process (workflows/bpmn), on SQLite and PostgreSQL.

Each level file is deployed together with the fragments it calls.  At every wait the test checks which
element waits, in which lane, and the ``dossier_status`` the BPMN gives that element (read from the deployed
spec); at the end it checks which end event of the level process was reached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dossiers.timer_functions import timer_functions
from engine.errors import HandlerError
from engine.facade import Engine
from engine.runtime import ServiceContext
from handlers import HandlerRegistry
from handlers.dossier_ops import HANDLERS as DOSSIER_HANDLERS
from tests.engine.conftest import dossier_registry

BPMN = Path(__file__).resolve().parents[2] / "workflows" / "bpmn"
FRAGMENTS = sorted((BPMN / "fragments").glob("*.bpmn"))
CODE = "000.00.01.H53-261130-{:04d}"
FORM = {"ho_ten": "Nguyễn Văn An", "ngay_sinh": "1990-05-17", "muc_dich": "Xin việc"}


@pytest.fixture
def make_engine(make_engine: Callable[..., Engine]) -> Callable[..., Engine]:
    """Engines whose timers know the working calendar (the reception escalates after working hours)."""

    def make(**overrides: Any) -> Engine:
        engine = make_engine(**overrides)
        engine.add_timer_functions(timer_functions)
        return engine

    return make


@pytest.fixture
def registry() -> HandlerRegistry:
    """The default handlers plus the ones the bundled dossier processes call."""
    return dossier_registry()


def start_data(code: str, level: int) -> dict[str, Any]:
    """The start data of a judicial-record dossier of ``level``, as ``DossierService.submit`` gives it (also
    used by ``bench/engine_overhead.py``)."""
    data: dict[str, Any] = {
        "dossier_code": code,
        "procedure_code": "1.001417",
        "procedure_name": "Cấp Phiếu lý lịch tư pháp",
        "level": level,
        "processing_days": 10,
        "fees": [{"code": "LLTP", "amount": Decimal("200000")}],
        "fee_total": Decimal("200000"),
        "applicant": {
            "name": "Nguyễn Văn An",
            "id_number": "001090012345",
            "address": "12 Tràng Tiền, Hoàn Kiếm, Hà Nội",
            "phone": "0912345678",
            "email": "an.nguyen@example.vn",
        },
        "channel": 2 if level >= 3 else 1,
        "attachments": [],
    }
    if level >= 3:
        data["form_data"] = FORM
    return data


class Dossier:
    """Drives one dossier of one level through an engine, checking each wait against the BPMN."""

    def __init__(self, engine: Engine, level: int, number: int, **extra: Any) -> None:
        self.engine = engine
        self.level = level
        self.code = CODE.format(number)
        documents = [(f"dossier_l{level}.bpmn", (BPMN / f"dossier_l{level}.bpmn").read_bytes())]
        documents += [(f"fragments/{path.name}", path.read_bytes()) for path in FRAGMENTS]
        engine.deploy(documents, deployed_by="analyst")
        self.view = engine.start(
            f"dossier_l{level}", self._data(extra), business_key=self.code, actor="citizen"
        )
        self.properties = self._properties(self.view["definition_id"])

    def _data(self, extra: dict[str, Any]) -> dict[str, Any]:
        return {**start_data(self.code, self.level), **extra}

    def _properties(self, definition_id: int) -> dict[str, dict[str, str]]:
        """``{element id: spiffworkflow properties}`` of the deployed level process and its fragments."""
        with self.engine.store.unit_of_work(write=False) as uow:
            row = uow.definition(definition_id)
            assert row is not None
            spec, subprocess_specs = self.engine.codec.load_specs(row.spec_json)
        found: dict[str, dict[str, str]] = {}
        for process in (spec, *subprocess_specs.values()):
            for name, task_spec in process.task_specs.items():
                properties = (getattr(task_spec, "extensions", None) or {}).get("properties")
                if properties is not None:
                    assert name not in found, f"element id {name} is used twice"
                    found[name] = properties
        return found

    def status_of(self, element_id: str) -> str | None:
        return self.properties.get(element_id, {}).get("dossier_status")

    def task(self, element_id: str, lane: str, status: str | None) -> dict[str, Any]:
        """Assert that exactly ``element_id`` waits for a person in ``lane``; return the task."""
        assert self.view["status"] == "running"
        assert [(t["element_id"], t["lane"]) for t in self.view["tasks"]] == [(element_id, lane)]
        assert self.status_of(element_id) == status
        return dict(self.view["tasks"][0])

    def do(self, element_id: str, lane: str, status: str | None, data: dict[str, Any] | None = None) -> None:
        """Check the waiting task, then complete it with ``data``."""
        task = self.task(element_id, lane, status)
        self.view = self.engine.complete_task(task["id"], data or {}, actor=lane)

    def waits_for(self, messages: list[str], timers: list[str] | None = None) -> None:
        assert self.view["tasks"] == []
        assert sorted(s["message_name"] for s in self.view["subscriptions"]) == sorted(messages)
        assert sorted(t["element_id"] for t in self.view["timers"]) == sorted(timers or [])
        for subscription in self.view["subscriptions"]:
            assert subscription["correlation"]["dossier_code"] == self.code

    def ended_at(self, end_id: str, status: str | None) -> None:
        """Assert the instance completed at end event ``end_id`` of the level process."""
        assert self.view["status"] == "completed", self.view["tasks"]
        assert self.view["tasks"] == [] and self.view["subscriptions"] == [] and self.view["timers"] == []

        def ends(workflow: Any) -> list[str]:
            return [
                task.task_spec.name
                for task in workflow.tasks.values()
                if type(task.task_spec).__name__ == "EndEvent" and task.task_spec.name != "End"
            ]

        # A finished instance is not cached: read it back from the database.
        reached = self.engine._read(self.view["id"], lambda _head, workflow: ends(workflow))
        assert reached == [end_id]
        assert self.status_of(end_id) == status

    def review(self, decision: str, **data: Any) -> None:
        self.do("review", "reception", "1", {"decision": decision, **data})

    def processing(self, send_back: int = 0) -> None:
        for _ in range(send_back):
            self.do(
                "appraise", "specialist", "4", {"appraisal_opinion": "Đủ điều kiện", "draft_result": "P-1"}
            )
            self.do("approve", "leader", "4", {"approval": "send_back", "approval_note": "Bổ sung căn cứ"})
        self.do("appraise", "specialist", "4", {"appraisal_opinion": "Đủ điều kiện", "draft_result": "P-2"})
        self.do("approve", "leader", "4", {"approval": "approve", "approval_note": ""})


def completed_tasks(engine: Engine, instance_id: str) -> list[str]:
    return [
        entry["element_id"]
        for entry in engine.show(instance_id)["history"]
        if entry["action"] == "task_completed"
    ]


def test_level_1_only_informs(make_engine: Callable[..., Engine]) -> None:
    dossier = Dossier(make_engine(), 1, 1)
    assert dossier.task("information", "applicant", None)["form_ref"] == "procedure_information"
    dossier.do("information", "applicant", None)
    dossier.ended_at("end_l1", None)


def test_level_2_paper_dossier_with_downloaded_forms(make_engine: Callable[..., Engine]) -> None:
    dossier = Dossier(make_engine(), 2, 2)
    dossier.do("information", "applicant", None)
    assert dossier.task("download_forms", "applicant", "1")["form_ref"] == "form_download"
    dossier.do("download_forms", "applicant", "1", {"form_data": FORM})
    prefilled = dossier.view["data"]["prefilled_form"]
    assert prefilled["prefilled"] is True and prefilled["fields"] == FORM
    assert prefilled["form_id"].startswith("FORM-1.001417-")
    dossier.do("record_paper_submission", "reception", "1", {"copies": 1})
    dossier.engine = make_engine()  # a restarted worker continues from the database, inside the fragments
    dossier.review("accept")
    dossier.processing()
    dossier.do("desk_result", "reception", "9", {"fee_paid": True, "handed_over_to": "Nguyễn Văn An"})
    dossier.ended_at("end_l2", "10")
    assert dossier.view["data"]["reception_outcome"] == "accepted"
    assert dossier.view["data"]["handed_over_to"] == "Nguyễn Văn An"


def test_level_3_online_with_two_supplements_and_a_send_back(make_engine: Callable[..., Engine]) -> None:
    dossier = Dossier(make_engine(), 3, 3)
    dossier.do("information", "applicant", None)
    assert dossier.task("submit_online", "applicant", "1")["form_ref"] == "dossier_submission"
    dossier.do("submit_online", "applicant", "1", {"form_data": FORM, "attachments": ["cccd.pdf"]})
    for round_ in (1, 2):
        dossier.review("supplement", supplement_items=[f"Bản sao CCCD (lần {round_})"])
        assert dossier.task("supplement", "applicant", "5")["form_ref"] == "supplement_answer"
        dossier.do(
            "supplement", "applicant", "5", {"supplement_note": "Đã bổ sung", "attachments": ["x.pdf"]}
        )
        dossier.engine = make_engine()
    dossier.review("accept")
    dossier.processing(send_back=1)
    dossier.do("desk_result", "reception", "9", {"fee_paid": True, "handed_over_to": "Nguyễn Văn An"})
    dossier.ended_at("end_l3", "10")
    assert completed_tasks(dossier.engine, dossier.view["id"]) == [
        "information",
        "submit_online",
        "review",
        "supplement",
        "review",
        "supplement",
        "review",
        "appraise",
        "approve",
        "appraise",
        "approve",
        "desk_result",
    ]


def test_level_3_refusal_ends_the_whole_process(make_engine: Callable[..., Engine]) -> None:
    dossier = Dossier(make_engine(), 3, 4)
    dossier.do("information", "applicant", None)
    dossier.do("submit_online", "applicant", "1", {"form_data": FORM})
    dossier.review("refuse", refusal_reason="Không thuộc thẩm quyền")
    dossier.ended_at("end_refused", "3")
    assert dossier.properties["end_refused"]["role"] == "refusal"
    assert dossier.view["data"]["reception_outcome"] == "refused"
    assert "appraise" not in completed_tasks(dossier.engine, dossier.view["id"])


def _paid_level_4(make_engine: Callable[..., Engine], number: int, delivery_method: str) -> Dossier:
    dossier = Dossier(make_engine(), 4, number, delivery_method=delivery_method)
    dossier.do("information", "applicant", None)
    dossier.do("submit_online", "applicant", "1", {"form_data": FORM})
    dossier.review("accept")
    dossier.waits_for(["payment.confirmed"], timers=["payment_expiry"])
    assert dossier.status_of("wait_payment") == "6"
    assert dossier.properties["payment_expiry"]["role"] == "payment_expiry"
    dossier.engine = make_engine()
    dossier.view = dossier.engine.send_message(
        "payment.confirmed", {"dossier_code": dossier.code}, {"paid_amount": "200000"}, actor="vnpay"
    )
    assert dossier.view["timers"] == []
    request = dossier.view["data"]["payment_request"]
    assert request["payment_ref"].startswith("PAY-") and request["currency"] == "VND"
    assert request["amount"] == Decimal("200000") and isinstance(request["amount"], Decimal)
    assert dossier.view["data"]["payment_outcome"] == "paid"
    dossier.processing()
    return dossier


def test_level_4_paid_online_and_delivered_by_post(make_engine: Callable[..., Engine]) -> None:
    dossier = _paid_level_4(make_engine, 5, "post")
    dossier.waits_for(["post.cancelled", "post.delivered"])
    waits = {s["message_name"]: s["element_id"] for s in dossier.view["subscriptions"]}
    assert waits == {"post.delivered": "wait_post_delivered", "post.cancelled": "post_cancelled"}
    assert dossier.status_of("wait_post_delivered") == "9" and dossier.status_of("post_cancelled") == "9"
    request = dossier.view["data"]["postal_request"]
    assert (
        request["address"] == "12 Tràng Tiền, Hoàn Kiếm, Hà Nội" and request["recipient"] == "Nguyễn Văn An"
    )
    assert request["phone"] == "0912345678"
    dossier.engine = make_engine()
    dossier.view = dossier.engine.send_message(
        "post.delivered", {"dossier_code": dossier.code}, {"delivered_on": "2026-12-03"}, actor="vnpost"
    )
    dossier.ended_at("end_l4", "10")


def test_level_4_cancelled_post_goes_back_to_the_desk(make_engine: Callable[..., Engine]) -> None:
    dossier = _paid_level_4(make_engine, 10, "post")
    dossier.view = dossier.engine.send_message(
        "post.cancelled", {"dossier_code": dossier.code}, {}, actor="vnpost"
    )
    assert dossier.view["subscriptions"] == []
    dossier.do("hand_over_result", "reception", "9", {"handed_over_to": "Nguyễn Văn An"})
    dossier.ended_at("end_l4", "10")
    assert "wait_post_delivered" not in completed_tasks(dossier.engine, dossier.view["id"])


def test_level_4_delivered_online(make_engine: Callable[..., Engine]) -> None:
    dossier = _paid_level_4(make_engine, 6, "online")
    assert dossier.view["data"]["online_delivery"]["channel"] == "online"
    # Released, but not returned until the applicant collects it.
    dossier.waits_for(["result.collected"])
    [subscription] = dossier.view["subscriptions"]
    assert subscription["element_id"] == "wait_result_collected"
    assert dossier.status_of("wait_result_collected") == "9"
    dossier.engine = make_engine()
    dossier.view = dossier.engine.send_message(
        "result.collected", {"dossier_code": dossier.code}, {}, actor="citizen"
    )
    dossier.ended_at("end_l4", "10")


def test_level_4_handed_over_at_the_desk(make_engine: Callable[..., Engine]) -> None:
    dossier = _paid_level_4(make_engine, 7, "desk")
    dossier.do("hand_over_result", "reception", "9", {"fee_paid": True, "handed_over_to": "Nguyễn Văn An"})
    dossier.ended_at("end_l4", "10")


def test_level_4_unpaid_request_expires_and_stops_the_dossier(
    make_engine: Callable[..., Engine], clock
) -> None:
    dossier = Dossier(make_engine(), 4, 8, delivery_method="online")
    dossier.do("information", "applicant", None)
    dossier.do("submit_online", "applicant", "1", {"form_data": FORM})
    dossier.review("accept")
    dossier.waits_for(["payment.confirmed"], timers=["payment_expiry"])
    clock.advance(days=2)
    assert dossier.engine.fire_due_timers() == []
    clock.advance(days=2)
    dossier.engine = make_engine()
    fired = dossier.engine.fire_due_timers()
    assert [(f["element_id"], f["outcome"]) for f in fired] == [("payment_expiry", "fired")]
    dossier.view = dossier.engine.show(dossier.view["id"])
    dossier.ended_at("end_payment_expired", "8")
    assert dossier.view["data"]["payment_outcome"] == "expired"
    assert "appraise" not in completed_tasks(dossier.engine, dossier.view["id"])


def test_level_4_without_a_fee_skips_the_payment(make_engine: Callable[..., Engine]) -> None:
    dossier = Dossier(make_engine(), 4, 9, delivery_method="online", fees=[], fee_total=Decimal("0"))
    dossier.do("information", "applicant", None)
    dossier.do("submit_online", "applicant", "1", {"form_data": FORM})
    dossier.review("accept")
    dossier.task("appraise", "specialist", "4")
    assert dossier.view["data"]["payment_outcome"] == "exempt"
    assert "payment_request" not in dossier.view["data"]
    dossier.processing()
    dossier.waits_for(["result.collected"])
    dossier.view = dossier.engine.send_message("result.collected", {"dossier_code": dossier.code}, {})
    dossier.ended_at("end_l4", "10")


def _context(task_id: str = "t-1", attempt: int = 1) -> ServiceContext:
    return ServiceContext(
        "i-1", "B-1", "request_payment", task_id, attempt, datetime(2026, 12, 1, tzinfo=UTC)
    )


def test_dossier_handlers_are_deterministic_per_task() -> None:
    pay = DOSSIER_HANDLERS["payment.request"]
    first = pay({"amount": Decimal("215000"), "dossier_code": "X"}, _context())
    again = pay({"amount": "215000", "dossier_code": "X"}, _context(attempt=2))
    other = pay({"amount": 215000}, _context(task_id="t-2"))
    assert first == again and first["payment_ref"] != other["payment_ref"]
    assert first["amount"] == Decimal("215000") and first["currency"] == "VND"
    post = DOSSIER_HANDLERS["delivery.post"]
    address = post({"address": " 12 Tràng Tiền ", "recipient": "An", "phone": None}, _context())
    assert address == post({"address": "12 Tràng Tiền", "recipient": "An"}, _context(attempt=3))
    assert (address["recipient"], address["address"], address["phone"]) == ("An", "12 Tràng Tiền", None)
    assert DOSSIER_HANDLERS["delivery.online"]({}, _context())["channel"] == "online"
    form = DOSSIER_HANDLERS["forms.prefill"]({"fields": FORM}, _context())
    assert form["prefilled"] is True and form["fields"] == FORM and form["form_id"].startswith("FORM-")


@pytest.mark.parametrize(
    ("operator", "params", "wanted"),
    [
        ("payment.request", {}, "'amount' must be a number"),
        ("payment.request", {"amount": "abc"}, "'amount' must be a number"),
        ("payment.request", {"amount": True}, "'amount' must be a number"),
        ("payment.request", {"amount": 0}, "must be more than 0 VND"),
        ("payment.request", {"amount": Decimal("10.5")}, "whole number of VND"),
        ("delivery.post", {"address": "  "}, "'address' must be non-empty text"),
        ("delivery.post", {"address": "12 Tràng Tiền"}, "'recipient' must be non-empty text"),
        ("forms.prefill", {"fields": ["a"]}, "'fields' must be the declared data"),
    ],
)
def test_dossier_handlers_refuse_bad_parameters(operator: str, params: dict, wanted: str) -> None:
    with pytest.raises(HandlerError, match=wanted) as caught:
        DOSSIER_HANDLERS[operator](params, _context())
    assert caught.value.retryable is False
    assert caught.value.message.startswith(operator)
