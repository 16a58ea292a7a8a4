"""POST /api/v1/dossiers with an Idempotency-Key: a retried submission never opens a second dossier."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from fpdf import FPDF

from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, COPY_FORM

CERTIFIED_COPY = "2.000815"  # level 3, commune
BODY = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT, "form_data": COPY_FORM}


def _pdf(text: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def _submit(portal: Portal, key: str, body: dict[str, Any], files: list[bytes]) -> Any:
    data: dict[str, Any] = {"payload": json.dumps(body, ensure_ascii=False)}
    data["attachments"] = [
        (io.BytesIO(content), f"tệp {i}.pdf", "application/pdf") for i, content in enumerate(files)
    ]
    headers = {"Idempotency-Key": key}
    return portal.call(
        "POST", "/api/v1/dossiers", "citizen", data=data, content_type="multipart/form-data", headers=headers
    )


def _totals(portal: Portal) -> tuple[int, int]:
    dossiers = portal.call("GET", "/api/v1/dossiers", "citizen").get_json()
    files = 0
    for dossier in dossiers["items"]:
        listed = portal.call("GET", f"/api/v1/dossiers/{dossier['code']}/attachments", "citizen").get_json()
        files += len(listed["items"])
    return dossiers["page"]["total"], files


def test_a_retry_answers_with_the_first_dossier_and_its_files_once(portal: Portal):
    files = [_pdf("bang tot nghiep")]  # the same bytes again: fpdf stamps each rendering with its time
    first = _submit(portal, "web-4f1c2a", BODY, files)
    assert first.status_code == 201, first.get_json()
    again = _submit(portal, "web-4f1c2a", BODY, files)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["code"] == first.get_json()["code"]
    assert again.headers["Location"] == first.headers["Location"]
    assert _totals(portal) == (1, 1)
    # The declaration went through once: the dossier waits at the desk's review, not at the applicant.
    tasks = portal.call("GET", "/api/v1/tasks", "citizen").get_json()["items"]
    assert tasks == []


def test_the_same_key_for_another_submission_is_a_conflict(portal: Portal):
    files = [_pdf("mot")]
    assert _submit(portal, "web-77", BODY, files).status_code == 201
    other_file = _submit(portal, "web-77", BODY, [_pdf("hai")])
    assert other_file.status_code == 409, other_file.get_json()
    other_body = _submit(portal, "web-77", {**BODY, "copies": 3}, files)
    assert other_body.status_code == 409
    assert _totals(portal) == (1, 1)


def test_a_bad_key_is_refused_before_anything_is_written(portal: Portal):
    refused = _submit(portal, "khóa có dấu", BODY, [])
    assert refused.status_code == 422
    assert "Idempotency-Key" in refused.get_json()["errors"]
    assert _totals(portal) == (0, 0)


def test_a_refused_submission_leaves_its_key_free_for_the_corrected_one(portal: Portal):
    wrong = {**BODY, "form_data": {**COPY_FORM, "so_giay_to": "12"}}
    files = [_pdf("mot")]
    assert _submit(portal, "web-fix", wrong, files).status_code == 422
    assert _submit(portal, "web-fix", BODY, files).status_code == 201
    assert _totals(portal) == (1, 1)


def test_two_clicks_at_once_open_one_dossier(portal: Portal):
    answers: list[int] = []
    app = portal.client.application

    def click() -> None:
        client = app.test_client()
        data: dict[str, Any] = {"payload": json.dumps(BODY, ensure_ascii=False)}
        headers = {"Idempotency-Key": "web-double", "Authorization": f"Bearer {portal.login('citizen')}"}
        response = client.post(
            "/api/v1/dossiers", data=data, headers=headers, content_type="multipart/form-data"
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 201], answers
    assert _totals(portal)[0] == 1
