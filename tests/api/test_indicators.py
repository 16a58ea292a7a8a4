"""GET /api/v1/stats/indicators: Decision 766 style rates per agency and month, counted by hand.

The dossiers are written straight into the tables (what the lifecycle would have left behind), so that every
count below can be checked by reading the table in this docstring:

| code | agency  | procedure      | channel   | received (VN)      | outcome | rating | paid    | e-result |
|------|---------|----------------|-----------|--------------------|---------|--------|---------|----------|
| P1   | police  | 2.000488 (fee) | online    | 2026-01-05 10:00   | early   | 5      | paid    | yes      |
| P2   | police  | 2.000488       | online    | 2026-01-31 23:30   | late    | 3      | paid    | yes      |
| P3   | police  | 2.000488       | in person | 2026-02-01 00:30   | on_time | 4      | failed  | no       |
| P4   | police  | 2.000488       | online    | never (sub. 02-10) | -       | -      | -       | -        |
| P5   | police  | 2.000488       | online    | 2026-02-20 09:00   | -       | -      | pending | -        |
| C1   | commune | 2.000815 (fee) | online    | 2026-01-10 09:00   | on_time | -      | -       | yes      |
| C2   | commune | 1.000893 (fee) | online    | 2026-03-03 09:00   | early   | 4      | -       | yes      |
| C3   | commune | 9.000001 free  | online    | 2026-03-05 09:00   | late    | -      | -       | no       |
| C4   | commune | 2.000815       | online    | 2025-12-31 20:00   | on_time | 5      | -       | yes      |
| C5   | commune | 2.000815       | online    | 2026-04-01 00:10   | -       | -      | -       | -        |

P2 and P3 straddle midnight of 1 February in Viet Nam (both are 31 January in UTC): the month is Viet Nam's.
"paid" is the status of the online payment attempt, if any. C4 and C5 fall outside 2026-01..2026-03.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert

from dossiers import store
from dossiers.indicators import charges_fee
from dossiers.tables import result_documents
from payments.tables import payments
from tests.api.conftest import COMMUNE, POLICE, Portal
from tests.dossiers.conftest import APPLICANT, LLTP_FORM, WORKFLOWS, vn

URL = "/api/v1/stats/indicators"
FREE = "9.000001"
# code, agency, procedure, channel, submitted (VN), received (VN) or None, outcome, rating, payment, e-result
DOSSIERS: list[tuple[Any, ...]] = [
    ("P1", POLICE, "2.000488", 2, (2026, 1, 5, 9), (2026, 1, 5, 10), "early", 5, "paid", True),
    ("P2", POLICE, "2.000488", 2, (2026, 1, 31, 22), (2026, 1, 31, 23, 30), "late", 3, "paid", True),
    ("P3", POLICE, "2.000488", 1, (2026, 2, 1, 0, 10), (2026, 2, 1, 0, 30), "on_time", 4, "failed", False),
    ("P4", POLICE, "2.000488", 2, (2026, 2, 10, 9), None, None, None, None, False),
    ("P5", POLICE, "2.000488", 2, (2026, 2, 20, 8), (2026, 2, 20, 9), None, None, "pending", False),
    ("C1", COMMUNE, "2.000815", 2, (2026, 1, 10, 8), (2026, 1, 10, 9), "on_time", None, None, True),
    ("C2", COMMUNE, "1.000893", 2, (2026, 3, 3, 8), (2026, 3, 3, 9), "early", 4, None, True),
    ("C3", COMMUNE, FREE, 2, (2026, 3, 5, 8), (2026, 3, 5, 9), "late", None, None, False),
    ("C4", COMMUNE, "2.000815", 2, (2025, 12, 31, 19), (2025, 12, 31, 20), "on_time", 5, None, True),
    ("C5", COMMUNE, "2.000815", 2, (2026, 4, 1, 0, 5), (2026, 4, 1, 0, 10), None, None, None, False),
]
COUNT_NAMES = [
    "dossiers",
    "received",
    "received_online",
    "finished",
    "finished_on_time",
    "with_fee",
    "paid_online",
    "rated",
    "rating_sum",
    "satisfied",
    "results_electronic",
]
# (agency, month) -> the counts above, in COUNT_NAMES order, read off the table in the docstring.
EXPECTED_ROWS = {
    (COMMUNE, "2026-01"): (1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1),
    (COMMUNE, "2026-03"): (2, 2, 2, 2, 1, 1, 0, 1, 4, 1, 1),
    (POLICE, "2026-01"): (2, 2, 2, 2, 1, 2, 2, 2, 8, 1, 2),
    (POLICE, "2026-02"): (3, 2, 1, 1, 1, 2, 0, 1, 4, 1, 0),
}


def _free_procedure(portal: Portal) -> None:
    record = json.loads((WORKFLOWS / "procedures" / "2.000913.json").read_text(encoding="utf-8"))
    record.update(code=FREE, fees=[{"code": "MIEN", "amount": 0, "unit": "per_request", "mode": "exempt"}])
    with portal.engine.store.unit_of_work() as uow:
        store.upsert_procedure(
            uow.conn,
            {
                "code": FREE,
                "name": "Thủ tục miễn phí (thử nghiệm)",
                "level": 3,
                "bpmn": "dossier_l3",
                "agency_code": COMMUNE,
                "sector": "Thử nghiệm",
                "decree_class": "mot_phan",
                "record": json.dumps(record, ensure_ascii=False),
                "updated_at": vn(2026, 1, 1, 8),
            },
        )


def _insert(portal: Portal, row: tuple[Any, ...]) -> None:
    code, agency, procedure, channel, submitted, received, outcome, rating, payment, electronic = row
    received_at = vn(*received) if received else None
    finished_at = received_at + timedelta(days=3) if outcome and received_at else None
    values = {
        "code": code,
        "procedure_code": procedure,
        "level": 4 if procedure == "2.000488" else 3,
        "agency_code": agency,
        "owner": "citizen",
        "applicant": APPLICANT,
        "channel": channel,
        "status": 10 if outcome else (3 if received is None else 4),
        "submitted_at": vn(*submitted),
        "received_at": received_at,
        "finished_at": finished_at,
        "outcome": outcome,
        "rating": rating,
        "updated_at": vn(*submitted),
    }
    with portal.engine.store.unit_of_work() as uow:
        store.insert_dossier(uow.conn, values)
        if payment:
            uow.conn.execute(insert(payments).values(**_payment(code, payment, vn(*submitted))))
        if electronic:
            uow.conn.execute(
                insert(result_documents).values(
                    dossier_code=code,
                    filename=f"{code}.pdf",
                    media_type="application/pdf",
                    sha256="0" * 64,
                    content=b"%PDF-1.7",
                    created_at=finished_at,
                )
            )


def _payment(code: str, status: str, at: Any) -> dict[str, Any]:
    return {
        "txn_ref": f"T{code}",
        "dossier_code": code,
        "provider": "vnpay",
        "amount": Decimal(200000),
        "currency": "VND",
        "lines": "[]",
        "status": status,
        "created_at": at,
        "expires_at": at + timedelta(minutes=15),
        "process_advanced": status == "paid",
    }


@pytest.fixture
def counted(portal: Portal) -> Portal:
    _free_procedure(portal)
    for row in DOSSIERS:
        _insert(portal, row)
    return portal


def _get(portal: Portal, user: str | None, **query: str) -> Any:
    return portal.call("GET", URL, user, query_string=query)


def _counts(entry: dict[str, Any]) -> tuple[int, ...]:
    return tuple(entry[name] for name in COUNT_NAMES)


def test_counts_per_agency_and_month_in_viet_nam_time(counted: Portal):
    response = _get(counted, "analyst", **{"from": "2026-01", "to": "2026-03"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["from"], body["to"], body["agency_code"]) == ("2026-01", "2026-03", None)
    assert {(r["agency_code"], r["month"]): _counts(r) for r in body["rows"]} == EXPECTED_ROWS
    police_january = next(r for r in body["rows"] if (r["agency_code"], r["month"]) == (POLICE, "2026-01"))
    assert police_january["agency_name"].startswith("Công an tỉnh")
    assert (
        police_january["on_time_rate"],
        police_january["online_rate"],
        police_january["online_payment_rate"],
        police_january["satisfaction_rate"],
        police_january["average_rating"],
        police_january["digitisation_rate"],
    ) == (0.5, 1.0, 1.0, 0.5, 4.0, 1.0)
    assert {a["code"] for a in body["agencies"]} == {POLICE, COMMUNE}


def test_months_are_zero_filled_and_totals_cover_the_period(counted: Portal):
    body = _get(counted, "admin", **{"from": "2025-12", "to": "2026-04"}).get_json()
    assert [m["month"] for m in body["months"]] == ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04"]
    assert [m["dossiers"] for m in body["months"]] == [1, 3, 3, 2, 1]

    body = _get(counted, "admin", **{"from": "2026-01", "to": "2026-03"}).get_json()
    totals = body["totals"]
    assert _counts(totals) == (8, 7, 6, 6, 4, 6, 2, 4, 16, 3, 4)
    assert (
        totals["on_time_rate"],
        totals["online_rate"],
        totals["online_payment_rate"],
        totals["satisfaction_rate"],
        totals["average_rating"],
        totals["digitisation_rate"],
    ) == (0.6667, 0.8571, 0.3333, 0.75, 4.0, 0.6667)
    score = totals["score"]
    assert score["indicative"] is True and score["max_points"] == 82
    points = {g["group"]: g["points"] for g in score["groups"]}
    assert points == {
        "publicity": None,
        "progress": 13.33,
        "online_services": 10.29,
        "online_payment": 3.33,
        "satisfaction": 13.5,
        "digitisation": 14.67,
    }
    assert (score["points"], score["value"]) == (55.12, 67.2)
    february = next(m for m in body["months"] if m["month"] == "2026-02")
    assert _counts(february) == EXPECTED_ROWS[(POLICE, "2026-02")]
    empty = _get(counted, "admin", **{"from": "2024-01", "to": "2024-02"}).get_json()
    assert empty["rows"] == [] and empty["totals"]["on_time_rate"] is None
    assert empty["totals"]["score"]["value"] is None


def test_officials_see_their_own_agency_only(counted: Portal):
    period = {"from": "2026-01", "to": "2026-03"}
    body = _get(counted, "desk", **period).get_json()
    assert body["agency_code"] == POLICE
    assert {r["agency_code"] for r in body["rows"]} == {POLICE}
    assert [a["code"] for a in body["agencies"]] == [POLICE]
    assert _get(counted, "leader", agency_code=POLICE, **period).status_code == 200
    assert _get(counted, "desk", agency_code=COMMUNE, **period).status_code == 403
    commune = _get(counted, "analyst", agency_code=COMMUNE, **period).get_json()
    assert {(r["agency_code"], r["month"]) for r in commune["rows"]} == {
        (COMMUNE, "2026-01"),
        (COMMUNE, "2026-03"),
    }
    assert _get(counted, "citizen", **period).status_code == 403
    assert _get(counted, "integrator", **period).status_code == 403
    assert _get(counted, None, **period).status_code == 401


def test_the_period_is_checked_and_defaults_to_the_last_twelve_months(portal: Portal):
    body = _get(portal, "analyst").get_json()  # the portal's clock: 2 March 2026
    assert (body["from"], body["to"]) == ("2025-04", "2026-03") and len(body["months"]) == 12
    assert _get(portal, "analyst", **{"from": "2026-13"}).status_code == 422
    assert _get(portal, "analyst", **{"from": "2026-03", "to": "2026-01"}).status_code == 422
    assert _get(portal, "analyst", **{"from": "2020-01", "to": "2026-01"}).status_code == 422


def test_a_dossier_received_through_its_process_counts(portal: Portal):
    body = {"procedure_code": "2.000488", "applicant": APPLICANT, "delivery_method": "desk"}
    code = portal.call("POST", "/api/v1/dossiers", "citizen", json=body).get_json()["code"]
    for user, element_id, data in [
        ("citizen", "information", {}),
        ("citizen", "submit_online", {"form_data": LLTP_FORM}),
        ("desk", "review", {"decision": "accept"}),
    ]:
        items = portal.call("GET", "/api/v1/tasks", user).get_json()["items"]
        [task] = [t for t in items if t["dossier_code"] == code and t["element_id"] == element_id]
        response = portal.call("POST", f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
        assert response.status_code == 200, response.get_json()
    [row] = _get(portal, "desk", **{"from": "2026-03", "to": "2026-03"}).get_json()["rows"]
    assert _counts(row) == (1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0)
    assert row["online_payment_rate"] == 0.0 and row["on_time_rate"] is None


def test_which_procedures_charge_a_fee():
    assert charges_fee({"fees": [{"mode": "before", "amount": 200000}]})
    assert charges_fee({"fees": [{"mode": "before", "amount": None}]})  # fixed by the province
    assert not charges_fee({"fees": [{"mode": "exempt", "amount": 0}, {"mode": "none", "amount": None}]})
    assert not charges_fee({"fees": [{"mode": "before", "amount": 0}]})
    assert not charges_fee({})
