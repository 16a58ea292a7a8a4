"""Dossier codes: <agency code>-<YYMMDD>-<NNNN>, unique and gapless under concurrent receipt."""

from __future__ import annotations

import threading

import pytest

from dossiers import store
from dossiers.service import Submission
from tests.dossiers.conftest import APPLICANT

CERTIFIED_COPY = "2.000815"


def test_code_format():
    from datetime import date

    assert store.dossier_code("000.00.01.H53", date(2026, 11, 30), 1) == "000.00.01.H53-261130-0001"
    assert store.dossier_code("000.00.01.H53", date(2026, 11, 30), 12345) == "000.00.01.H53-261130-12345"


def test_a_failed_start_gives_its_number_back(desk, monkeypatch):
    first = desk.submit(CERTIFIED_COPY)["code"]

    def crash(instance, log):
        raise RuntimeError("the process failed after the code was taken")

    with monkeypatch.context() as patch:
        patch.setattr(desk.service.engine, "run_steps", crash)
        with pytest.raises(RuntimeError):
            desk.submit(CERTIFIED_COPY)
    second = desk.submit(CERTIFIED_COPY)["code"]
    assert (first[-4:], second[-4:]) == ("0001", "0002")
    assert sorted(d["code"] for d in desk.service.dossiers()[0]) == [first, second]


@pytest.mark.parametrize("count", [200])
def test_concurrent_receipts_get_distinct_gapless_codes(desk, db_url, count):
    if not db_url.startswith("postgresql"):
        count = 40  # SQLite serializes writers; the PostgreSQL run is the real contention test
    barrier = threading.Barrier(8)
    codes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(batch: int) -> None:
        barrier.wait()
        for _ in range(batch):
            try:
                code = desk.service.submit(CERTIFIED_COPY, Submission(applicant=APPLICANT), owner="citizen")[
                    "code"
                ]
                with lock:
                    codes.append(code)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(count // 8,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == []
    assert len(codes) == count == len(set(codes))
    assert sorted(int(code[-4:]) for code in codes) == list(range(1, count + 1))
