"""The querydr API: the state of a transaction, with a checksum both ways, as VNPay answers it."""

from __future__ import annotations

from payments import vnpay_protocol as vnp
from tests.sandbox_gateway.conftest import ORDER_INFO, QUERY_PATH, SECRET, TMN_CODE, Sandbox

CREATED = "20260302090000"  # vnp_CreateDate of the payment, which querydr calls vnp_TransactionDate


def _answer(response) -> dict[str, str]:
    assert response.status_code == 200
    answer = response.get_json()
    assert set(answer) == {*vnp.QUERY_RESPONSE_FIELDS, "vnp_SecureHash"}
    assert answer["vnp_Command"] == "querydr" and len(answer["vnp_ResponseId"]) == 32
    return answer


def _signed(answer: dict[str, str]) -> bool:
    return answer["vnp_SecureHash"] == vnp.query_checksum(answer, vnp.QUERY_RESPONSE_FIELDS, SECRET)


def test_a_pending_transaction_is_not_finished(sandbox: Sandbox):
    sandbox.open()
    answer = _answer(sandbox.query("MC-0001", CREATED))
    assert _signed(answer)
    assert answer["vnp_ResponseCode"] == "00" and answer["vnp_Message"] == "QueryDR Success"
    assert answer["vnp_TransactionStatus"] == "01"
    assert answer["vnp_TmnCode"] == TMN_CODE and answer["vnp_TxnRef"] == "MC-0001"
    assert answer["vnp_Amount"] == "15000000" and answer["vnp_OrderInfo"] == ORDER_INFO
    assert answer["vnp_TransactionType"] == "01"
    assert answer["vnp_PayDate"] == answer["vnp_TransactionNo"] == answer["vnp_BankCode"] == ""
    assert answer["vnp_PromotionCode"] == answer["vnp_PromotionAmount"] == ""


def test_a_paid_transaction_answers_as_the_ipn_said(sandbox: Sandbox):
    sandbox.choose(sandbox.open(), "paid")
    [ipn] = sandbox.receiver.calls
    answer = _answer(sandbox.query("MC-0001", CREATED))
    assert _signed(answer)
    assert (answer["vnp_ResponseCode"], answer["vnp_TransactionStatus"]) == ("00", "00")
    assert answer["vnp_TransactionNo"] == ipn["vnp_TransactionNo"]
    assert answer["vnp_PayDate"] == ipn["vnp_PayDate"] and answer["vnp_BankCode"] == "NCB"
    assert answer["vnp_Amount"] == ipn["vnp_Amount"]


def test_failed_transactions_answer_error(sandbox: Sandbox):
    sandbox.choose(sandbox.open(sandbox.payment(txn_ref="MC-HUY")), "cancelled")
    sandbox.choose(sandbox.open(sandbox.payment(txn_ref="MC-SODU")), "insufficient_balance")
    cancelled = _answer(sandbox.query("MC-HUY", CREATED))
    poor = _answer(sandbox.query("MC-SODU", CREATED))
    assert _signed(cancelled) and _signed(poor)
    assert cancelled["vnp_ResponseCode"] == poor["vnp_ResponseCode"] == "00"
    assert cancelled["vnp_TransactionStatus"] == poor["vnp_TransactionStatus"] == "02"
    assert cancelled["vnp_TransactionNo"] == "0" and poor["vnp_TransactionNo"].isdigit()


def test_an_unknown_transaction_is_not_found(sandbox: Sandbox):
    sandbox.open()
    for txn_ref, date in (("MC-9999", CREATED), ("MC-0001", "20260302090001")):
        answer = _answer(sandbox.query(txn_ref, date))
        assert _signed(answer)
        assert answer["vnp_ResponseCode"] == "91" and answer["vnp_TransactionStatus"] == ""
        assert answer["vnp_TxnRef"] == txn_ref and answer["vnp_Amount"] == ""


def test_a_bad_checksum_is_refused(sandbox: Sandbox):
    sandbox.open()
    answer = _answer(sandbox.query("MC-0001", CREATED, secret="không-phải-bí-mật"))
    assert answer["vnp_ResponseCode"] == "97" and answer["vnp_TransactionStatus"] == ""
    assert _signed(answer)

    body = {"vnp_TmnCode": TMN_CODE, "vnp_TxnRef": "MC-0001", "vnp_SecureHash": "é"}
    assert _answer(sandbox.client.post(QUERY_PATH, json=body))["vnp_ResponseCode"] == "97"


def test_malformed_requests_and_unknown_merchants(sandbox: Sandbox):
    sandbox.open()
    wrong_command = _answer(sandbox.query("MC-0001", CREATED, vnp_Command="refund"))
    assert wrong_command["vnp_ResponseCode"] == "03" and _signed(wrong_command)
    bad_date = _answer(sandbox.query("MC-0001", "2026-03-02"))
    assert bad_date["vnp_ResponseCode"] == "03"

    stranger = _answer(sandbox.query("MC-0001", CREATED, vnp_TmnCode="KHACTMN1"))
    assert stranger["vnp_ResponseCode"] == "02" and stranger["vnp_SecureHash"] == ""
    not_json = sandbox.client.post(QUERY_PATH, data="vnp_TmnCode=MOTCUA01")
    assert _answer(not_json)["vnp_ResponseCode"] == "02"
