"""Files attached to dossiers over HTTP: submitted with the dossier, checked by content, read by whoever may
see the dossier, added by the applicant while a supplement is requested."""

from __future__ import annotations

import hashlib
import io
import json
import unicodedata
from typing import Any

from fpdf import FPDF
from PIL import Image

from dossiers import attachments
from tests.api.conftest import Portal
from tests.dossiers.conftest import APPLICANT, COPY_FORM

JUDICIAL_RECORD = "2.000488"  # level 4, police agency: reception user "desk"
CERTIFIED_COPY = "2.000815"  # level 3, commune agency: reception user "desk_other"
MiB = 1024 * 1024
BODY = {"procedure_code": JUDICIAL_RECORD, "applicant": APPLICANT, "delivery_method": "post"}


def _pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Ban sao can cuoc cong dan")
    return bytes(pdf.output())


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _submit(
    portal: Portal, files: list[tuple[bytes, str, str]], body: Any = None, user: str = "citizen"
) -> Any:
    data: dict[str, Any] = {"payload": json.dumps(body or BODY, ensure_ascii=False)}
    data["attachments"] = [(io.BytesIO(content), name, kind) for content, name, kind in files]
    return portal.call("POST", "/api/v1/dossiers", user, data=data, content_type="multipart/form-data")


def _count(portal: Portal) -> int:
    return portal.dossiers.dossiers()[1]


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = response.get_json()
    assert problem["status"] == status
    return problem


def test_submit_with_files_stores_them_with_the_dossier(portal: Portal):
    pdf, png = _pdf(), _png()
    nfd_name = unicodedata.normalize("NFD", "Bản sao căn cước.pdf")
    created = _submit(
        portal, [(pdf, nfd_name, "application/pdf"), (png, "../../Ảnh/chân dung.png", "image/png")]
    )
    assert created.status_code == 201, created.get_json()
    code = created.get_json()["code"]

    listed = portal.call("GET", f"/api/v1/dossiers/{code}/attachments", "citizen")
    assert listed.status_code == 200
    items = listed.get_json()["items"]
    assert [(i["filename"], i["content_type"], i["size"], i["sha256"]) for i in items] == [
        ("Bản sao căn cước.pdf", "application/pdf", len(pdf), hashlib.sha256(pdf).hexdigest()),
        ("chân dung.png", "image/png", len(png), hashlib.sha256(png).hexdigest()),
    ]
    assert unicodedata.is_normalized("NFC", items[0]["filename"])
    assert all(i["uploaded_by"] == "citizen" for i in items)

    # The process data lists them too, written in the transaction that created the dossier.
    instance_id = portal.dossiers.dossier(code)["instance_id"]
    assert portal.engine.show(instance_id)["data"]["attachments"] == [
        {k: i[k] for k in ("id", "filename", "sha256", "size", "content_type")} for i in items
    ]

    for item, content in zip(items, (pdf, png), strict=True):
        download = portal.call("GET", item["href"], "citizen")
        assert download.status_code == 200
        assert download.data == content
        assert download.mimetype == item["content_type"]
        assert download.headers["ETag"] == f'"{item["sha256"]}"'
        assert download.headers["Content-Disposition"].startswith("attachment;")
        assert "filename*=UTF-8''" in download.headers["Content-Disposition"]
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        again = portal.call(
            "GET", item["href"], "citizen", headers={"If-None-Match": download.headers["ETag"]}
        )
        assert again.status_code == 304

    # The reception official of the dossier's agency reads them; another citizen and another agency's
    # official get 404, as for the dossier itself.
    assert portal.call("GET", items[0]["href"], "desk").data == pdf
    assert portal.call("GET", f"/api/v1/dossiers/{code}/attachments", "desk").status_code == 200
    for stranger in ("citizen2", "desk_other"):
        _problem(portal.call("GET", f"/api/v1/dossiers/{code}/attachments", stranger), 404)
        _problem(portal.call("GET", items[0]["href"], stranger), 404)
    assert portal.call("GET", items[0]["href"]).status_code == 401
    _problem(portal.call("GET", f"/api/v1/dossiers/{code}/attachments/999999", "citizen"), 404)


def test_multipart_without_files_and_json_body_both_submit(portal: Portal):
    bare = _submit(portal, [])
    assert bare.status_code == 201, bare.get_json()
    code = bare.get_json()["code"]
    assert portal.call("GET", f"/api/v1/dossiers/{code}/attachments", "citizen").get_json() == {"items": []}
    assert portal.call("POST", "/api/v1/dossiers", "citizen", json=BODY).status_code == 201

    bad = _problem(_submit(portal, [(_pdf(), "a.pdf", "application/pdf")], body={"applicant": {}}), 422)
    assert {"payload.procedure_code", "payload.applicant.name"} <= set(bad["errors"])
    missing = portal.call("POST", "/api/v1/dossiers", "citizen", data={}, content_type="multipart/form-data")
    assert "payload" in _problem(missing, 422)["errors"]
    assert _count(portal) == 2


def test_content_decides_the_type_and_a_refusal_creates_nothing(portal: Portal):
    before = _count(portal)
    text = "Đây là một tệp văn bản, không phải PDF".encode()
    refused = _submit(
        portal, [(_pdf(), "don.pdf", "application/pdf"), (text, "giấy tờ.pdf", "application/pdf")]
    )
    problem = _problem(refused, 415)
    assert problem["code"] == "attachment_type_unsupported"
    assert problem["filenames"] == ["giấy tờ.pdf"] and "giấy tờ.pdf" in problem["detail"]
    assert _count(portal) == before

    # A real PNG declared as something else is accepted and stored with the type its bytes show.
    created = _submit(portal, [(_png(), "scan.bin", "application/octet-stream")])
    assert created.status_code == 201, created.get_json()
    items = portal.call(
        "GET", f"/api/v1/dossiers/{created.get_json()['code']}/attachments", "citizen"
    ).get_json()["items"]
    assert [(i["filename"], i["content_type"]) for i in items] == [("scan.bin", "image/png")]


def test_size_and_count_limits(portal: Portal):
    before = _count(portal)
    # 11 files is a rule on the request's content, not on its size (it is small): 422, field `attachments`.
    eleven = [(_png(), f"trang-{n}.png", "image/png") for n in range(11)]
    problem = _problem(_submit(portal, eleven), 422)
    assert "attachments" in problem["errors"]

    big = b"%PDF-1.4\n" + b"0" * (11 * MiB)
    problem = _problem(
        _submit(portal, [(_png(), "ok.png", "image/png"), (big, "lớn.pdf", "application/pdf")]), 413
    )
    assert problem["code"] == "attachment_too_large" and problem["filenames"] == ["lớn.pdf"]

    # Over the 20 MiB body limit: refused before any part is read.
    three = [(b"%PDF-1.4\n" + b"0" * (7 * MiB), f"{n}.pdf", "application/pdf") for n in range(3)]
    _problem(_submit(portal, three), 413)
    assert _count(portal) == before


def _task(portal: Portal, user: str, element_id: str) -> dict[str, Any]:
    items = portal.call("GET", "/api/v1/tasks", user).get_json()["items"]
    assert [t["element_id"] for t in items] == [element_id], items
    task: dict[str, Any] = items[0]
    return task


def _complete(portal: Portal, user: str, element_id: str, data: dict[str, Any]) -> None:
    task = _task(portal, user, element_id)
    response = portal.call("POST", f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
    assert response.status_code == 200, response.get_json()


def _add(portal: Portal, code: str, user: str, files: list[tuple[bytes, str, str]]) -> Any:
    data = {"attachments": [(io.BytesIO(content), name, kind) for content, name, kind in files]}
    return portal.call(
        "POST", f"/api/v1/dossiers/{code}/attachments", user, data=data, content_type="multipart/form-data"
    )


def _status(portal: Portal, code: str) -> int:
    status: int = portal.call("GET", f"/api/v1/dossiers/{code}", "citizen").get_json()["status"]["code"]
    return status


def test_applicant_adds_files_only_while_a_supplement_is_requested(portal: Portal):
    body = {"procedure_code": CERTIFIED_COPY, "applicant": APPLICANT}
    created = _submit(portal, [(_pdf(), "bằng tốt nghiệp.pdf", "application/pdf")], body=body)
    assert created.status_code == 201, created.get_json()
    code = created.get_json()["code"]
    png = _png()
    assert (
        _problem(_add(portal, code, "citizen", [(png, "cccd.png", "image/png")]), 409)["code"] == "conflict"
    )

    _complete(portal, "citizen", "information", {})
    _complete(portal, "citizen", "submit_online", {"form_data": COPY_FORM})
    items = ["Bản sao thẻ căn cước"]
    _complete(portal, "desk_other", "review", {"decision": "supplement", "supplement_items": items})
    assert _status(portal, code) == 5

    _problem(_add(portal, code, "citizen2", [(png, "cccd.png", "image/png")]), 404)
    _problem(_add(portal, code, "desk_other", [(png, "cccd.png", "image/png")]), 403)
    _problem(_add(portal, code, "citizen", [(b"GIF89a....", "cccd.png", "image/png")]), 415)
    _problem(_add(portal, code, "citizen", [(png, f"{n}.png", "image/png") for n in range(11)]), 422)
    _problem(portal.call("POST", f"/api/v1/dossiers/{code}/attachments", "citizen", json={}), 415)
    added = _add(portal, code, "citizen", [(png, "cccd.png", "image/png")])
    assert added.status_code == 201, added.get_json()
    [new] = added.get_json()["items"]
    assert (new["filename"], new["sha256"], new["uploaded_by"]) == (
        "cccd.png",
        hashlib.sha256(png).hexdigest(),
        "citizen",
    )

    listed = portal.call("GET", f"/api/v1/dossiers/{code}/attachments", "desk_other").get_json()["items"]
    assert [i["filename"] for i in listed] == ["bằng tốt nghiệp.pdf", "cccd.png"]
    assert portal.call("GET", new["href"], "desk_other").data == png

    _complete(portal, "citizen", "supplement", {"supplement_note": f"Đã bổ sung tệp {new['id']}"})
    assert _status(portal, code) == 1
    _problem(_add(portal, code, "citizen", [(png, "lần hai.png", "image/png")]), 409)


def test_openapi_documents_the_endpoints(portal: Portal):
    spec = portal.call("GET", "/api/v1/openapi.json").get_json()
    submit = spec["paths"]["/api/v1/dossiers"]["post"]
    assert set(submit["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"413", "415", "422"} <= set(submit["responses"])
    paths = spec["paths"]
    assert set(paths["/api/v1/dossiers/{code}/attachments"]) >= {"get", "post"}
    download = paths["/api/v1/dossiers/{code}/attachments/{attachment_id}"]["get"]
    assert set(download["responses"]["200"]["content"]) == {"application/pdf", "image/jpeg", "image/png"}
    assert "Attachment" in spec["components"]["schemas"]


def test_filenames_are_cleaned_and_types_sniffed():
    assert attachments.clean_filename("..\\..\\C:/hồ sơ/\u202egpj.exe.pdf\x00") == "gpj.exe.pdf"
    assert attachments.clean_filename("/etc/", "image/png") == "attachment.png"
    assert attachments.clean_filename(" .. ") == "attachment"
    long = attachments.clean_filename("ả" * 300 + ".pdf")
    assert len(long) == 255 and long.endswith("ả.pdf")
    assert attachments.sniff(_pdf()) == "application/pdf"
    assert attachments.sniff(_png()) == "image/png"
    assert attachments.sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert attachments.sniff(b"GIF89a") is None and attachments.sniff(b"") is None
