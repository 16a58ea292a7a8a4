"""The public JSON Schema of a procedure's forms: what the submission page renders and the API checks."""

from __future__ import annotations

import json

from tests.api.conftest import Portal
from tests.dossiers.conftest import WORKFLOWS


def test_a_procedure_form_is_served_as_its_json_schema(portal: Portal):
    response = portal.call("GET", "/api/v1/procedures/2.000488/forms/lltp_mau_03/schema")
    assert response.status_code == 200
    found = response.get_json()
    stored = json.loads((WORKFLOWS / "forms" / "lltp_mau_03.json").read_text(encoding="utf-8"))
    assert found == {"id": "lltp_mau_03", "title": stored["title"], "schema": stored["schema"]}
    assert found["schema"]["properties"]["ho_ten"]["title"] == "Họ và tên"


def test_only_the_procedure_own_forms_are_served(portal: Portal):
    for path in (
        "/api/v1/procedures/2.000488/forms/ho_tich_to_khai_ket_hon/schema",  # another procedure's form
        "/api/v1/procedures/2.000488/forms/no_such_form/schema",
        "/api/v1/procedures/9.999999/forms/lltp_mau_03/schema",
    ):
        response = portal.call("GET", path)
        assert response.status_code == 404 and response.mimetype == "application/problem+json", path
