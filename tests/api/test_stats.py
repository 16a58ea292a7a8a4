"""The anonymous visitor counter: GET /api/v1/stats/visits and the visits its after_request hook counts."""

from __future__ import annotations

import os
import re
import stat
from datetime import date

import pytest
from flask import Flask
from sqlalchemy import event, select

from api import stats
from dossiers.tables import visits
from dossiers.visits import DailySecret, record_visit
from tests.dossiers.conftest import vn

STATS = "/api/v1/stats/visits"
ALICE = ("203.0.113.7", "Mozilla/5.0 (Windows NT 10.0) Firefox/140.0")
BINH = ("203.0.113.8", "Mozilla/5.0 (Linux; Android 15) Chrome/140.0")
CHI = ("203.0.113.7", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Safari/605.1")  # Alice's IP, another device


def with_stats(app: Flask, secret: DailySecret | None = None) -> Flask:
    """Register the blueprint and the hook unless create_app already does; hash with ``secret``.

    The default secret is private to the test process: tests leave nothing in /dev/shm.
    """
    if "stats" not in app.blueprints:
        app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(stats.blp)
    stats.install(app, secret or DailySecret(shared_dir=None))
    return app


@pytest.fixture
def site(portal, tmp_path):
    with_stats(portal.client.application, DailySecret(shared_dir=tmp_path))
    return portal


def visit(site, who, path="/api/v1/procedures", method="GET"):
    ip, agent = who
    return site.client.open(
        path, method=method, headers={"User-Agent": agent}, environ_base={"REMOTE_ADDR": ip}
    )


def counts(site, who=ALICE):
    response = visit(site, who, STATS)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def rows(site):
    with site.engine.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(visits).order_by(visits.c.first_seen))]


def a_procedure(site):
    return site.client.get("/api/v1/procedures").get_json()["items"][0]["code"]


def test_three_visitors_and_their_repeats(site):
    code = a_procedure(site)  # the test client's own visit: no User-Agent, another visitor
    for _ in range(3):
        assert visit(site, ALICE).status_code == 200
    assert visit(site, BINH, f"/api/v1/procedures/{code}").status_code == 200
    assert visit(site, BINH, f"/api/v1/procedures/{code}").status_code == 200
    assert visit(site, CHI).status_code == 200

    assert counts(site) == {"online_now": 4, "today": 4, "this_week": 4, "this_month": 4, "total": 4}
    assert sorted(row["hits"] for row in rows(site)) == [1, 1, 2, 4]  # Alice's stats call counts too


def test_the_stats_call_counts_its_own_visitor(site):
    assert counts(site, BINH) == {"online_now": 1, "today": 1, "this_week": 1, "this_month": 1, "total": 1}


def test_online_now_is_the_last_five_minutes(site):
    visit(site, ALICE)
    visit(site, BINH)
    site.clock.advance(minutes=4)
    assert counts(site, CHI)["online_now"] == 3
    site.clock.advance(minutes=2)
    assert counts(site, CHI)["online_now"] == 1  # only Chi, who just asked
    visit(site, ALICE)
    assert counts(site, CHI) == {"online_now": 2, "today": 3, "this_week": 3, "this_month": 3, "total": 3}


def test_days_weeks_and_months_roll_over_in_viet_nam_time(site):
    site.clock.current = vn(2026, 3, 2, 9, 0)  # Monday
    visit(site, BINH)
    visit(site, CHI)
    assert counts(site) == {"online_now": 3, "today": 3, "this_week": 3, "this_month": 3, "total": 3}

    site.clock.current = vn(2026, 3, 3, 23, 58)  # Tuesday night
    assert counts(site) == {"online_now": 1, "today": 1, "this_week": 4, "this_month": 4, "total": 4}
    site.clock.current = vn(2026, 3, 4, 0, 1)  # past local midnight, still 3 March in UTC
    assert counts(site) == {"online_now": 2, "today": 1, "this_week": 5, "this_month": 5, "total": 5}

    site.clock.current = vn(2026, 3, 9, 10, 0)  # the next Monday: a new week
    assert counts(site) == {"online_now": 1, "today": 1, "this_week": 1, "this_month": 6, "total": 6}

    site.clock.current = vn(2026, 4, 1, 10, 0)  # Wednesday 1 April: the week began in March
    visit(site, BINH)
    assert counts(site) == {"online_now": 2, "today": 2, "this_week": 2, "this_month": 2, "total": 8}


def test_no_ip_or_user_agent_is_stored(site):
    for who in (ALICE, BINH, CHI):
        visit(site, who)
    site.clock.advance(days=1)
    visit(site, ALICE)
    stored = rows(site)
    assert len(stored) == 4
    for row in stored:
        assert re.fullmatch(r"[0-9a-f]{64}", row["visitor"]), row
        flat = " ".join(str(value) for value in row.values())
        for ip, agent in (ALICE, BINH, CHI):
            assert ip not in flat and agent not in flat and "Mozilla" not in flat


def test_same_person_on_two_days_is_two_unrelated_visitors(site):
    visit(site, ALICE)
    visit(site, ALICE)
    site.clock.advance(days=1)
    visit(site, ALICE)
    first, second = rows(site)
    assert (first["day"], first["hits"]) == (date(2026, 3, 2), 2)
    assert (second["day"], second["hits"]) == (date(2026, 3, 3), 1)
    assert first["visitor"] != second["visitor"]


def test_only_public_catalogue_and_stats_gets_are_counted(site):
    visit(site, ALICE, "/api/v1/procedures/NO-SUCH-CODE")  # 404
    visit(site, ALICE, "/api/v1/procedures", method="HEAD")
    visit(site, ALICE, "/api/v1/procedures", method="POST")  # 405
    visit(site, ALICE, "/api/v1/dossiers")  # 401, and not public
    visit(site, ALICE, "/api/v1/procedurez")  # 404, only looks like the prefix
    site.call("GET", "/api/v1/tasks", user="desk")
    assert rows(site) == []
    code = a_procedure(site)
    response = visit(site, ALICE, f"/api/v1/procedures/{code}/forms/nothing")
    assert response.status_code >= 400
    assert len(rows(site)) == 1  # a_procedure's own call


def test_a_failed_count_never_fails_the_page(site, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(stats, "record_visit", broken)
    assert visit(site, ALICE).status_code == 200
    assert counts(site)["total"] == 0


MONDAY, TUESDAY = date(2026, 3, 2), date(2026, 3, 3)


def test_the_secret_is_per_day_and_forgotten():
    secret = DailySecret(shared_dir=None)
    first = secret.visitor(MONDAY, *ALICE)
    assert secret.visitor(MONDAY, *ALICE) == first
    assert secret.visitor(MONDAY, *BINH) != first
    assert secret.visitor(TUESDAY, *ALICE) != first
    assert secret.visitor(MONDAY, *ALICE) != first  # Monday's secret is gone: its hashes cannot be recomputed
    assert DailySecret(shared_dir=None).visitor(MONDAY, *ALICE) != first  # nor by another process


def test_worker_processes_share_the_day_secret_in_a_private_folder(tmp_path):
    worker_1, worker_2 = DailySecret(shared_dir=tmp_path), DailySecret(shared_dir=tmp_path)
    assert worker_1.visitor(MONDAY, *ALICE) == worker_2.visitor(MONDAY, *ALICE)
    (folder,) = tmp_path.iterdir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in folder.iterdir()] == ["20260302"]

    tuesday = worker_2.visitor(TUESDAY, *ALICE)
    assert [p.name for p in folder.iterdir()] == ["20260303"]  # Monday's secret is deleted
    assert worker_1.visitor(TUESDAY, *ALICE) == tuesday
    late = DailySecret(shared_dir=tmp_path)  # a request still dated Monday, after the rotation
    assert late.visitor(MONDAY, *ALICE) != worker_1.visitor(MONDAY, *ALICE)
    assert [p.name for p in folder.iterdir()] == ["20260303"]  # ... does not bring Monday back


def test_a_shared_folder_others_can_enter_is_not_used(tmp_path):
    folder = tmp_path / f"motcua-visits-{os.getuid()}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    worker_1, worker_2 = DailySecret(shared_dir=tmp_path), DailySecret(shared_dir=tmp_path)
    assert worker_1.visitor(MONDAY, *ALICE) != worker_2.visitor(MONDAY, *ALICE)  # each keeps its own
    assert list(folder.iterdir()) == []


def test_a_visit_is_one_upsert(site):
    statements = []
    secret = DailySecret(shared_dir=None)
    db = site.engine.store.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db, "before_cursor_execute", listener)
    try:
        with db.begin() as conn:
            now = vn(2026, 3, 2, 9, 0)
            first = record_visit(conn, *ALICE, now, secret=secret)
            again = record_visit(conn, *ALICE, now, secret=secret)
    finally:
        event.remove(db, "before_cursor_execute", listener)
    assert first == again
    assert len(statements) == 2 and all("ON CONFLICT" in s for s in statements)
    assert [row["hits"] for row in rows(site)] == [2]


def test_the_api_document_says_total_counts_visitor_days(site):
    spec = site.client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/stats/visits"]["get"]
    assert "visitor-days" in operation["description"]
    assert "security" not in operation
    schema = spec["components"]["schemas"]["VisitStats"]
    assert set(schema["required"]) == {"online_now", "today", "this_week", "this_month", "total"}
