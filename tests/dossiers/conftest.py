"""Dossier fixtures: an engine with the bundled BPMN deployed and the catalogue seeded, on a known Monday."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dossiers.catalogue import load_forms
from dossiers.service import DossierService, Submission
from engine.facade import Engine
from motcua.bundle import bundled_bpmn

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
VN = ZoneInfo("Asia/Ho_Chi_Minh")

APPLICANT = {
    "name": "Nguyễn Thị Hương",
    "id_number": "001190012345",
    "address": "12 Tràng Tiền, Hoàn Kiếm, Hà Nội",
    "phone": "0912345678",
    "email": "huong.nguyen@example.vn",
}
LLTP_FORM = {
    "ho_ten": "Nguyễn Thị Hương",
    "gioi_tinh": "Nữ",
    "ngay_sinh": "1990-05-17",
    "noi_sinh": "Hà Nội",
    "quoc_tich": "Việt Nam",
    "loai_giay_to": "Thẻ căn cước",
    "so_giay_to": "001190012345",
    "noi_thuong_tru": "12 Tràng Tiền, Hoàn Kiếm, Hà Nội",
    "qua_trinh_cu_tru": [{"tu_thang_nam": "05/2004", "den_thang_nam": "nay", "noi_cu_tru": "Hà Nội"}],
    "tinh_trang_an_tich": "Không có án tích",
    "loai_phieu": "Phiếu số 1",
    "muc_dich": "Bổ sung hồ sơ xin việc",
    "so_luong_phieu": 1,
    "cam_doan": True,
}
COPY_FORM = {
    "ho_ten": "Nguyễn Thị Hương",
    "loai_giay_to": "Thẻ căn cước",
    "so_giay_to": "001190012345",
    "giay_to": [
        {
            "ten_giay_to": "Bằng tốt nghiệp đại học",
            "nguon_goc": "Cơ quan, tổ chức có thẩm quyền của Việt Nam",
            "so_trang": 1,
            "so_ban_sao": 2,
        }
    ],
}
PARENT_FORM = {
    "nguoi_nhan": {
        "ho_ten": "Trần Văn Bình",
        "ngay_sinh": "1985-02-01",
        "quoc_tich": "Việt Nam",
        "noi_cu_tru": "Hà Nội",
        "loai_giay_to": "Thẻ căn cước",
        "so_giay_to": "001085001234",
    },
    "nguoi_duoc_nhan": {
        "ho_ten": "Trần Minh Khôi",
        "ngay_sinh": "2015-06-01",
        "quoc_tich": "Việt Nam",
        "noi_cu_tru": "Hà Nội",
    },
    "quan_he": "Cha nhận con",
    "co_quan_dang_ky": "UBND phường Hoàn Kiếm",
    "cam_doan": True,
}


def vn(*parts: int) -> datetime:
    """A moment in Viet Nam time."""
    return datetime(*parts, tzinfo=VN)


class Desk:
    """Drives dossiers through the service the way citizens and officials would."""

    def __init__(self, service: DossierService, clock: Any) -> None:
        self.service = service
        self.clock = clock

    def submit(self, procedure: str, owner: str = "citizen-1", **options: Any) -> dict[str, Any]:
        return self.service.submit(procedure, Submission(applicant=APPLICANT, **options), owner=owner)

    def task(self, code: str, element_id: str) -> dict[str, Any]:
        tasks = self.service.dossier(code)["tasks"]
        assert [t["element_id"] for t in tasks] == [element_id], tasks
        return tasks[0]

    def do(
        self, code: str, element_id: str, data: dict[str, Any] | None = None, actor: str = "officer"
    ) -> None:
        self.service.complete_task(self.task(code, element_id)["id"], data or {}, actor=actor)

    def status(self, code: str) -> int:
        return int(self.service.dossier(code)["status"])

    def accept_and_process(self, code: str) -> None:
        self.do(code, "review", {"decision": "accept"}, actor="desk.officer")
        self.do(
            code, "appraise", {"appraisal_opinion": "Đủ điều kiện", "draft_result": "KQ"}, actor="specialist"
        )
        self.do(code, "approve", {"approval": "approve", "approval_note": ""}, actor="leader")


@pytest.fixture
def desk(make_engine: Callable[..., Engine], clock: Any) -> Desk:
    clock.current = vn(2026, 3, 2, 9, 0)  # Monday 2 March 2026, 09:00
    engine = make_engine()
    engine.deploy(bundled_bpmn(WORKFLOWS), deployed_by="seed")
    service = DossierService(engine, load_forms(WORKFLOWS / "forms"))
    service.seed_catalogue(WORKFLOWS)
    return Desk(service, clock)
