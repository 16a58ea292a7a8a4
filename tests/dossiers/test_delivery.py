"""Result delivery at level 4 (issue 6): the result document, online collection, the post, the desk.

On SQLite and PostgreSQL.  The dossier reaches status 10 only when the applicant actually has the result:
the first download through a signed link, the post's delivery report, or the hand-over at the desk.
"""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pypdf import PdfReader

from dossiers import delivery_store, webhooks
from dossiers.postal import is_tracking_number
from dossiers.result_links import LinksNotConfigured, ResultLinks
from dossiers.status import Status
from dossiers.webhooks import RESULT_READY
from engine.errors import ConflictError, ForbiddenError, HandlerError, NotFoundError, ValidationError
from tests.dossiers.conftest import APPLICANT, LLTP_FORM

JUDICIAL_RECORD = "2.000488"  # level 4
DRAFT = "Phiếu lý lịch tư pháp số 1: Không có án tích (cấp cho bà Nguyễn Thị Hương)"
LINKS = ResultLinks("bí-mật-ký-đường-dẫn-thử-nghiệm", "https://dichvucong.example.vn")


def approved(desk: Any, delivery_method: str, owner: str = "citizen-1") -> str:
    """Submit a level-4 dossier, pay, appraise and approve it; return its code."""
    code = desk.submit(JUDICIAL_RECORD, owner=owner, delivery_method=delivery_method)["code"]
    desk.do(code, "information", actor=owner)
    desk.do(code, "submit_online", {"form_data": LLTP_FORM}, actor=owner)
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    desk.service.engine.send_message("payment.confirmed", {"dossier_code": code}, {}, actor="vnpay")
    desk.do(
        code, "appraise", {"appraisal_opinion": "Đủ điều kiện", "draft_result": DRAFT}, actor="specialist"
    )
    desk.do(code, "approve", {"approval": "approve", "approval_note": "Đồng ý cấp"}, actor="leader")
    return code


def stored(desk: Any, code: str) -> dict[str, Any]:
    with desk.service.engine.store.unit_of_work(write=False) as uow:
        found = delivery_store.result_of(uow.conn, code, content=True)
    assert found is not None
    return found


def link_parts(link: dict[str, Any]) -> tuple[str, str, str, str]:
    """(code, u, exp, sig) of an issued link."""
    parts = urlsplit(link["url"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return parts.path.rsplit("/", 1)[1], query["u"], query["exp"], query["sig"]


def received_messages(desk: Any, code: str, name: str) -> int:
    history = desk.service.engine.show(desk.service.dossier(code)["instance_id"])["history"]
    return sum(1 for e in history if e["action"] == "message_received" and e["details"]["message"] == name)


# -- the result document ------------------------------------------------------------------------------
def test_approval_stores_the_result_pdf_with_its_sha256(desk):
    code = approved(desk, "online")
    result = stored(desk, code)
    assert result["sha256"] == hashlib.sha256(result["content"]).hexdigest()
    assert (result["filename"], result["media_type"]) == (f"ket-qua-{code}.pdf", "application/pdf")
    assert result["approved_by"] == "leader" and result["collected_at"] is None
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(result["content"])).pages)
    for expected in ("KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH", code, APPLICANT["name"], DRAFT, "Đồng ý cấp"):
        assert expected in text.replace("\n", " "), expected
    assert "lý lịch tư pháp" in text  # the procedure's name, with its diacritics
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.PROCESSED  # decided, not yet handed over
    assert dossier["result"] == {
        "sha256": result["sha256"],
        "created_at": desk.clock.now(),
        "collected_at": None,
        "collected_via": None,
        "delivery_method": "online",
    }


def test_integrators_hear_that_the_result_is_ready(desk, clock):
    store = desk.service.engine.store
    hook = webhooks.create_webhook(
        store,
        owner="integrator",
        url="https://portal.example.vn/hook",
        events=[RESULT_READY],
        now=clock.now(),
    )
    code = approved(desk, "online")
    [delivery] = webhooks.deliveries_of(store, hook["id"], None)
    assert delivery["event"] == RESULT_READY and delivery["dossier_code"] == code
    assert delivery["payload"] == {
        "code": code,
        "procedure_code": JUDICIAL_RECORD,
        "sha256": stored(desk, code)["sha256"],
        "delivery_method": "online",
        "at": clock.now().astimezone(UTC).isoformat(),
    }


def test_a_send_back_stores_no_result(desk):
    code = desk.submit(JUDICIAL_RECORD, delivery_method="online")["code"]
    desk.do(code, "information", actor="citizen-1")
    desk.do(code, "submit_online", {"form_data": LLTP_FORM}, actor="citizen-1")
    desk.do(code, "review", {"decision": "accept"}, actor="desk.officer")
    desk.service.engine.send_message("payment.confirmed", {"dossier_code": code}, {}, actor="vnpay")
    desk.do(code, "appraise", {"appraisal_opinion": "Đủ", "draft_result": DRAFT}, actor="specialist")
    desk.do(code, "approve", {"approval": "send_back", "approval_note": "Bổ sung căn cứ"}, actor="leader")
    assert desk.service.dossier(code)["result"] is None
    with pytest.raises(ConflictError):  # nothing to collect yet
        desk.service.result_link(code, "citizen-1", LINKS)


# -- online ---------------------------------------------------------------------------------------------
def test_online_result_is_returned_at_the_first_download_only(desk, clock):
    code = approved(desk, "online")
    assert desk.status(code) == Status.PROCESSED
    assert desk.service.dossier(code)["tasks"] == []  # waiting for the applicant, nobody's task
    link = desk.service.result_link(code, "citizen-1", LINKS)
    assert link["url"].startswith(f"https://dichvucong.example.vn/api/v1/results/{code}?")
    assert link["expires_at"] == (clock.now() + timedelta(minutes=15)).replace(microsecond=0)
    _, username, expires, sig = link_parts(link)
    assert LINKS.verify(code, username, expires, sig, clock.now()) == "citizen-1"
    assert desk.status(code) == Status.PROCESSED  # a link alone hands nothing over

    clock.advance(minutes=3)
    first = desk.service.collect_result(code, "citizen-1")
    assert first["content"] == stored(desk, code)["content"]
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.RESULT_RETURNED
    assert dossier["result"]["collected_at"] == clock.now() and dossier["result"]["collected_via"] == "online"
    assert (first["collected_at"], first["collected_by"]) == (clock.now(), "citizen-1")
    hop = dossier["handovers"][-1]
    assert (hop["from_role"], hop["to_role"], hop["actor"], hop["result"]) == (
        "reception",
        "applicant",
        "citizen-1",
        "collected",
    )

    clock.advance(minutes=5)  # a second download within the link's validity changes nothing
    again = desk.service.collect_result(code, "citizen-1")
    assert again["content"] == first["content"] and again["collected_at"] == first["collected_at"]
    assert desk.service.dossier(code)["handovers"] == dossier["handovers"]
    assert received_messages(desk, code, "result.collected") == 1


def test_result_links_refuse_expired_tampered_and_foreign_use(desk, clock):
    code = approved(desk, "online")
    other = approved(desk, "online", owner="citizen-2")
    _, username, expires, sig = link_parts(desk.service.result_link(code, "citizen-1", LINKS))
    now = clock.now()
    for tampered in (
        (other, username, expires, sig),  # another dossier
        (code, "citizen-2", expires, sig),  # another person
        (code, username, str(int(expires) + 3600), sig),  # a later expiry
        (code, username, expires, sig[:-1] + ("0" if sig[-1] != "0" else "1")),
        (code, username, expires, None),
        (code, username, "soon", sig),
    ):
        with pytest.raises(ForbiddenError, match="not valid"):
            LINKS.verify(*tampered, now)
    with pytest.raises(ForbiddenError, match="not valid"):  # signed with another secret
        ResultLinks("another secret", LINKS.public_url).verify(code, username, expires, sig, now)
    with pytest.raises(ForbiddenError, match="expired"):
        LINKS.verify(code, username, expires, sig, now + timedelta(minutes=15))
    with pytest.raises(LinksNotConfigured):
        ResultLinks(None, LINKS.public_url).issue(code, username, now)
    # Only the applicant gets a link or the result.
    with pytest.raises(ForbiddenError):
        desk.service.result_link(code, "citizen-2", LINKS)
    with pytest.raises(ForbiddenError):
        desk.service.collect_result(code, "citizen-2")
    assert desk.status(code) == Status.PROCESSED and desk.status(other) == Status.PROCESSED


def test_two_first_downloads_at_once_return_the_result_once(desk):
    code = approved(desk, "online")
    barrier, outcomes = threading.Barrier(2), []

    def download() -> None:
        barrier.wait()
        try:
            outcomes.append(desk.service.collect_result(code, "citizen-1")["sha256"])
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [stored(desk, code)["sha256"]] * 2
    assert desk.status(code) == Status.RESULT_RETURNED
    assert received_messages(desk, code, "result.collected") == 1
    assert [h["result"] for h in desk.service.dossier(code)["handovers"]].count("collected") == 1


def test_only_an_online_result_is_collected_online(desk):
    code = approved(desk, "desk")
    with pytest.raises(ConflictError, match="not online"):
        desk.service.result_link(code, "citizen-1", LINKS)
    with pytest.raises(ConflictError, match="not online"):
        desk.service.collect_result(code, "citizen-1")
    with pytest.raises(NotFoundError):
        desk.service.collect_result("000.00.14.H26-260302-9999", "citizen-1")


# -- by post --------------------------------------------------------------------------------------------
def test_post_registers_an_order_and_its_delivery_returns_the_result(desk, clock):
    code = approved(desk, "post")
    assert desk.status(code) == Status.PROCESSED
    order = desk.service.postal_order(code)
    number = order["tracking_number"]
    assert is_tracking_number(number) and number.startswith("EB") and number.endswith("VN")
    assert (order["status"], order["recipient"], order["address"], order["phone"]) == (
        "registered",
        APPLICANT["name"],
        APPLICANT["address"],
        APPLICANT["phone"],
    )
    assert order["postage"] == 30000  # billed with the fees (process data "postage")
    assert [(e["status"], e["actor"]) for e in order["events"]] == [("registered", "leader")]

    with pytest.raises(ConflictError, match="registered; it cannot become delivered"):
        desk.service.report_postal_event(number, "delivered", "vnpost")
    clock.advance(hours=2)
    picked_up = clock.now() - timedelta(minutes=30)
    order = desk.service.report_postal_event(
        number, "collecting", "vnpost", at=picked_up, note="Bưu tá đã nhận"
    )
    assert order["status"] == "collecting" and desk.status(code) == Status.PROCESSED
    with pytest.raises(ConflictError):
        desk.service.report_postal_event(number, "collecting", "vnpost")
    with pytest.raises(ValidationError):
        desk.service.report_postal_event(number, "lost", "vnpost")
    with pytest.raises(ValidationError):
        desk.service.report_postal_event(number, "delivered", "vnpost", at=clock.now() + timedelta(hours=1))
    with pytest.raises(NotFoundError):
        desk.service.report_postal_event(
            "EB000000014VN" if number != "EB000000014VN" else "X", "collecting", "v"
        )

    clock.advance(days=1)
    order = desk.service.report_postal_event(number, "delivered", "vnpost", note="Người nhận ký nhận")
    assert [(e["status"], e["at"], e["note"]) for e in order["events"]] == [
        ("registered", clock.now() - timedelta(days=1, hours=2), None),
        ("collecting", picked_up, "Bưu tá đã nhận"),
        ("delivered", clock.now(), "Người nhận ký nhận"),
    ]
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.RESULT_RETURNED
    assert (dossier["result"]["collected_via"], dossier["result"]["collected_at"]) == ("post", clock.now())
    assert dossier["handovers"][-1]["result"] == "delivered" and number in dossier["handovers"][-1]["note"]
    with pytest.raises(ConflictError):  # delivered is final
        desk.service.report_postal_event(number, "cancelled", "vnpost")


def test_a_cancelled_postal_delivery_is_handed_over_at_the_desk(desk):
    code = approved(desk, "post")
    number = desk.service.postal_order(code)["tracking_number"]
    desk.service.report_postal_event(number, "collecting", "vnpost")
    order = desk.service.report_postal_event(number, "cancelled", "vnpost", note="Không liên lạc được")
    assert order["status"] == "cancelled"
    assert desk.status(code) == Status.PROCESSED  # the result is not handed over yet
    task = desk.task(code, "hand_over_result")
    assert task["lane"] == "reception"
    assert desk.service.dossier(code)["handovers"][-1]["result"] == "cancelled"
    with pytest.raises(ConflictError):
        desk.service.report_postal_event(number, "delivered", "vnpost")
    with pytest.raises(ValidationError) as caught:  # who received it must be recorded
        desk.do(code, "hand_over_result", {"handed_over_to": "Nguyễn Thị Hương"}, actor="desk.officer")
    assert set(caught.value.errors) == {"receiver_id_number"}
    assert desk.status(code) == Status.PROCESSED
    received = {"handed_over_to": "Nguyễn Thị Hương", "receiver_id_number": "001190012345"}
    desk.do(code, "hand_over_result", received, actor="desk.officer")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.RESULT_RETURNED and dossier["result"]["collected_via"] == "desk"


def test_a_postal_delivery_message_must_follow_the_order(desk):
    code = approved(desk, "post")
    engine = desk.service.engine
    # Straight from "registered" to "delivered" is refused, also through the generic message endpoint.
    with pytest.raises(ConflictError):
        engine.send_message("post.delivered", {"dossier_code": code}, {}, actor="integrator")
    assert desk.status(code) == Status.PROCESSED
    assert desk.service.postal_order(code)["status"] == "registered"
    # Once collecting, the same message moves the order with the process, whichever way it came.
    desk.service.report_postal_event(
        desk.service.postal_order(code)["tracking_number"], "collecting", "vnpost"
    )
    engine.send_message("post.delivered", {"dossier_code": code}, {}, actor="integrator")
    order = desk.service.postal_order(code)
    assert order["status"] == "delivered" and order["events"][-1]["actor"] == "integrator"
    assert desk.status(code) == Status.RESULT_RETURNED


def test_a_retried_postal_task_registers_one_order(desk, registry, clock):
    real = registry["delivery.post"]
    attempts: list[int] = []

    def flaky(params: dict[str, Any], context: Any) -> dict[str, Any]:
        attempts.append(context.attempt)
        if context.attempt == 1:
            raise HandlerError("the post's service is down", retryable=True)
        return real(params, context)

    registry.register("delivery.post", flaky)
    code = approved(desk, "post")
    with pytest.raises(NotFoundError):  # failed once: no order yet
        desk.service.postal_order(code)
    clock.advance(minutes=5)
    desk.service.engine.fire_due_timers()
    assert attempts == [1, 2]
    order = desk.service.postal_order(code)
    assert order["status"] == "registered" and len(order["events"]) == 1
    with desk.service.engine.store.unit_of_work(write=False) as uow:
        assert uow.count("postal_orders") == 1


# -- at the desk ----------------------------------------------------------------------------------------
def test_the_desk_records_who_received_the_result(desk):
    code = approved(desk, "desk")
    assert desk.status(code) == Status.PROCESSED
    with pytest.raises(ValidationError) as caught:
        desk.do(code, "hand_over_result", {"fee_paid": True}, actor="desk.officer")
    assert set(caught.value.errors) == {"handed_over_to", "receiver_id_number"}
    received = {"handed_over_to": "Trần Văn Bình", "receiver_id_number": "001085001234"}
    desk.do(code, "hand_over_result", received, actor="desk.officer")
    dossier = desk.service.dossier(code)
    assert dossier["status"] == Status.RESULT_RETURNED
    hop = dossier["handovers"][-1]
    assert (hop["element_id"], hop["from_role"], hop["to_role"], hop["actor"]) == (
        "hand_over_result",
        "reception",
        "applicant",
        "desk.officer",
    )
    assert hop["note"] == "Người nhận kết quả: Trần Văn Bình, giấy tờ tùy thân số 001085001234"
    result = stored(desk, code)
    assert (result["collected_via"], result["collected_by"], result["handed_over_by"]) == (
        "desk",
        "Trần Văn Bình",
        "desk.officer",
    )
    assert result["receiver_id_number"] == "001085001234"
    slip = PdfReader(io.BytesIO(desk.service.document(code, "control_slip")))
    assert "Trần Văn Bình" in " ".join(" ".join(page.extract_text() for page in slip.pages).split())
