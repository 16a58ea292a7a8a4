"""Dossier statuses as the national portal codes them (TrangThaiHoSo); the status of a process position."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any


class Status(IntEnum):
    """TrangThaiHoSo codes 1-10."""

    NEW = 1
    RECEIVED = 2
    NOT_RECEIVED = 3
    PROCESSING = 4
    SUPPLEMENT_REQUESTED = 5
    FINANCIAL_OBLIGATION = 6
    WITHDRAWN = 7
    STOPPED = 8
    PROCESSED = 9
    RESULT_RETURNED = 10


STATUS_NAMES = {
    Status.NEW: "Mới đăng ký",
    Status.RECEIVED: "Được tiếp nhận",
    Status.NOT_RECEIVED: "Không được tiếp nhận",
    Status.PROCESSING: "Đang xử lý",
    Status.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung",
    Status.FINANCIAL_OBLIGATION: "Yêu cầu thực hiện nghĩa vụ tài chính",
    Status.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    Status.STOPPED: "Dừng xử lý",
    Status.PROCESSED: "Đã xử lý xong",
    Status.RESULT_RETURNED: "Đã trả kết quả",
}

# While the dossier waits for the applicant the processing clock stands still.
PAUSING = {Status.SUPPLEMENT_REQUESTED: "supplement", Status.FINANCIAL_OBLIGATION: "payment"}
# Statuses that mean the agency has accepted a valid dossier (the clock runs from then).
ACCEPTED = frozenset(
    {
        Status.RECEIVED,
        Status.PROCESSING,
        Status.FINANCIAL_OBLIGATION,
        Status.PROCESSED,
        Status.RESULT_RETURNED,
    }
)
FINAL = frozenset({Status.NOT_RECEIVED, Status.WITHDRAWN, Status.STOPPED, Status.RESULT_RETURNED})

CHANNELS = {"in_person": 1, "online": 2, "post": 3}


def status_at(position: Iterable[Mapping[str, Any]]) -> Status | None:
    """Return the status of the elements a process stands at (their ``dossier_status`` property).

    Several waiting elements (parallel branches) give the most advanced status; elements without the
    property are ignored; None when none carries one.
    """
    codes = [
        int(p["properties"]["dossier_status"])
        for p in position
        if p.get("properties", {}).get("dossier_status")
    ]
    return Status(max(codes)) if codes else None


def describe(status: int) -> dict[str, Any]:
    """Return a status as {code, name} with its Vietnamese name."""
    return {"code": int(status), "name": STATUS_NAMES[Status(status)]}
