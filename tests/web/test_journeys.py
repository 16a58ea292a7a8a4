"""Whole journeys across roles, each person in their own browser, only through the pages:

- level 3: a citizen submits with an attachment; the reception desk claims it and asks for a supplement; the
  citizen answers with a new file; the desk accepts; the specialist appraises; the leader approves; the desk
  hands the result over; the citizen rates the service;
- level 4: a citizen submits, the desk accepts, the citizen pays the fee at the sandbox bank and comes back
  to a dossier being processed, with its e-receipt.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.live import LiveServer, running_server
from tests.web.conftest import PASSWORD, USERS, Screens

CERTIFIED_COPY = "2.000815"  # level 3, commune
CIVIL_EXTRACT = "2.000635"  # level 4, commune: copy of a civil-status extract, 8,000 đồng per copy
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
CODE = re.compile(r"/ho-so/(000\.01\.01\.H26-\d{6}-\d{4})$")


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The journeys run on both databases (the other page tests on SQLite only)."""
    with running_server(db_url, tmp_path, USERS, PASSWORD) as server:
        yield server


def _pdf(name: str) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/pdf", "buffer": PDF}


def _submit_certified_copy(page: Any) -> str:
    page.goto(f"/thu-tuc/{CERTIFIED_COPY}")
    page.get_by_role("link", name="Nộp hồ sơ trực tuyến").click()
    page.get_by_role("button", name="Nộp hồ sơ").wait_for()
    page.get_by_label("Họ và tên người yêu cầu chứng thực").fill("Nguyễn Thị Hương")
    page.get_by_label("Loại giấy tờ tùy thân").select_option("Thẻ căn cước")
    page.get_by_label("Số Thẻ căn cước/Căn cước công dân (12 chữ số) hoặc số Hộ chiếu").fill("001190012345")
    page.get_by_label("Tên giấy tờ, văn bản (bản chính)").fill("Bằng tốt nghiệp đại học")
    page.get_by_label("Nguồn gốc bản chính").select_option("Cơ quan, tổ chức có thẩm quyền của Việt Nam")
    page.get_by_label("Số trang của bản chính").fill("2")
    page.get_by_label("Số bản sao yêu cầu chứng thực").fill("3")
    page.get_by_label("Tệp đính kèm").set_input_files([_pdf("bằng tốt nghiệp.pdf")])
    page.get_by_role("button", name="Nộp hồ sơ").click()
    page.wait_for_url(CODE)
    match = CODE.search(page.url)
    assert match
    return match.group(1)


def _open_task(page: Any, code: str, screens: Screens, shot: str) -> None:
    """From the inbox: claim the dossier's task and open it."""
    page.goto("/can-bo")
    row = page.get_by_role("row", name=re.compile(re.escape(code)))
    row.wait_for()
    claim = row.get_by_role("button", name=re.compile("^Nhận xử lý"))
    if claim.count():
        claim.click()
        claim.wait_for(state="detached")  # the row now says the task is the user's
    screens.shot(page, f"{shot}-inbox")
    row.get_by_role("link", name=re.compile("^Xử lý")).click()
    page.get_by_role("button", name="Hoàn thành").wait_for()


def _complete(page: Any, screens: Screens, shot: str) -> None:
    screens.shot(page, f"{shot}-form")
    page.get_by_role("button", name="Hoàn thành").click()
    page.wait_for_url(re.compile(r"/can-bo(\?.*)?$"))


def test_level_3_with_a_supplement_loop_from_submission_to_rating(
    people: Any, live: LiveServer, screens: Screens
):
    citizen = people("citizen").page
    code = _submit_certified_copy(citizen)
    citizen.get_by_text(code).first.wait_for()
    screens.shot(citizen, "citizen-submitted")

    desk = people("desk").page
    _open_task(desk, code, screens, "desk-review")
    expect(desk.get_by_role("link", name="bằng tốt nghiệp.pdf")).to_be_visible()
    desk.get_by_label("Kết quả kiểm tra").select_option(label="Yêu cầu bổ sung, hoàn thiện hồ sơ")
    desk.get_by_role("button", name=re.compile("^Thêm")).first.click()
    desk.get_by_label(re.compile("^Giấy tờ cần bổ sung")).last.fill("Bản chụp Thẻ căn cước còn hiệu lực")
    _complete(desk, screens, "desk-review")
    assert live.status(code) == 5

    citizen.goto(f"/ho-so/{code}")
    citizen.get_by_text("Bản chụp Thẻ căn cước còn hiệu lực").wait_for()
    citizen.get_by_label("Nội dung bổ sung").fill("Đã bổ sung bản chụp Thẻ căn cước.")
    citizen.get_by_label("Tệp bổ sung").set_input_files([_pdf("thẻ căn cước.pdf")])
    screens.shot(citizen, "citizen-supplement")
    citizen.get_by_role("button", name="Gửi bổ sung").click()
    citizen.get_by_text(re.compile("Đã gửi bổ sung")).first.wait_for()
    assert live.status(code) == 1

    _open_task(desk, code, screens, "desk-review-again")
    expect(desk.get_by_role("link", name="thẻ căn cước.pdf")).to_be_visible()
    desk.get_by_label("Kết quả kiểm tra").select_option(label="Tiếp nhận hồ sơ")
    _complete(desk, screens, "desk-accept")
    assert live.status(code) == 4

    specialist = people("specialist").page
    _open_task(specialist, code, screens, "specialist")
    specialist.get_by_label("Ý kiến thẩm định").fill("Bản chính hợp lệ, đủ điều kiện chứng thực.")
    specialist.get_by_label("Dự thảo kết quả giải quyết").fill("Chứng thực 3 bản sao bằng tốt nghiệp.")
    _complete(specialist, screens, "specialist")

    leader = people("leader").page
    _open_task(leader, code, screens, "leader")
    leader.get_by_label("Ý kiến phê duyệt").select_option(label="Phê duyệt, ký kết quả")
    _complete(leader, screens, "leader")
    assert live.status(code) == 9

    _open_task(desk, code, screens, "desk-result")
    desk.get_by_label("Đã thu phí, lệ phí").check()
    desk.get_by_label("Họ và tên người nhận kết quả").fill("Nguyễn Thị Hương")
    _complete(desk, screens, "desk-result")
    assert live.status(code) == 10

    citizen.goto(f"/ho-so/{code}")
    citizen.get_by_label(re.compile("^5 sao")).check()
    citizen.get_by_label("Góp ý (không bắt buộc)").fill("Cán bộ hướng dẫn tận tình.")
    citizen.get_by_role("button", name="Gửi đánh giá").click()
    citizen.get_by_text(re.compile("Cảm ơn")).first.wait_for()
    screens.shot(citizen, "citizen-rated")
    dossier = live.dossier(code)
    assert dossier["rating"] == 5
    hops = [(h["from_role"], h["to_role"]) for h in dossier["handovers"]]
    assert ("reception", "applicant") in hops and ("leader", "reception") in hops, hops


def test_level_4_fee_paid_at_the_sandbox_bank(people: Any, live: LiveServer, screens: Screens):
    citizen = people("citizen").page
    citizen.goto(f"/thu-tuc/{CIVIL_EXTRACT}")
    citizen.get_by_role("link", name="Nộp hồ sơ trực tuyến").click()
    citizen.get_by_role("button", name="Nộp hồ sơ").wait_for()
    _declare_extract(citizen)
    citizen.get_by_label(re.compile("Nhận trực tuyến|trực tuyến")).first.check()
    screens.shot(citizen, "level4-form")
    citizen.get_by_role("button", name="Nộp hồ sơ").click()
    citizen.wait_for_url(CODE)
    match = CODE.search(citizen.url)
    assert match
    code = match.group(1)

    desk = people("desk").page
    _open_task(desk, code, screens, "level4-desk")
    desk.get_by_label("Kết quả kiểm tra").select_option(label="Tiếp nhận hồ sơ")
    _complete(desk, screens, "level4-desk")
    assert live.status(code) == 6

    citizen.goto(f"/ho-so/{code}")
    pay = citizen.get_by_role("button", name="Thanh toán trực tuyến")
    pay.wait_for()
    screens.shot(citizen, "level4-to-pay")
    pay.click()
    citizen.wait_for_url(re.compile(r"/sandbox/vnpay/paymentv2/vpcpay\.html"))
    screens.shot(citizen, "sandbox-bank")
    citizen.get_by_role("button", name=re.compile("thành công|Thanh toán", re.IGNORECASE)).first.click()
    citizen.wait_for_url(re.compile(r"/api/v1/payments/vnpay/return"))
    citizen.get_by_text("Thanh toán thành công").first.wait_for()
    screens.shot(citizen, "payment-return")
    citizen.get_by_role("link", name=re.compile("hồ sơ", re.IGNORECASE)).first.click()
    citizen.wait_for_url(re.compile(rf"/ho-so/{re.escape(code)}$"))
    citizen.get_by_role("link", name=re.compile("Biên lai")).first.wait_for()
    screens.shot(citizen, "level4-paid")
    assert live.status(code) == 4
    payments = live.ok("GET", f"/api/v1/dossiers/{code}/payments", "citizen")
    assert [a["status"] for a in payments["attempts"]] == ["paid"]


def _declare_extract(page: Any) -> None:
    """Fill the declaration of a civil-status extract copy through its labels (see the form's JSON Schema)."""
    id_label = "Số Thẻ căn cước/Căn cước công dân (12 chữ số) hoặc số Hộ chiếu"
    page.get_by_label("Họ, chữ đệm, tên người yêu cầu").fill("Nguyễn Thị Hương")
    page.get_by_label("Loại giấy tờ tùy thân").first.select_option("Thẻ căn cước")
    page.get_by_label(id_label).first.fill("001190012345")
    page.get_by_label("Nơi cư trú").fill("12 Tràng Tiền, Hoàn Kiếm, Hà Nội")
    person = page.get_by_role("group", name=re.compile("^Người được cấp bản sao trích lục hộ tịch"))
    person.get_by_label(re.compile(r"^Họ, chữ đệm, tên\W*$")).fill("Nguyễn Thị Hương")
    person.get_by_label("Ngày, tháng, năm sinh").fill("1990-05-17")
    page.get_by_label("Loại việc hộ tịch đã đăng ký").select_option("Khai sinh")
    page.get_by_label("Cơ quan đã đăng ký việc hộ tịch").fill("UBND phường Tràng Tiền")
    page.get_by_label("Số lượng bản sao yêu cầu cấp").fill("2")
    page.get_by_label(re.compile("^Tôi cam đoan")).check()
