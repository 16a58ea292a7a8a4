"""The task queue and the dossier lists at province scale: the indexes of migration 0011, and queue queries
that keep their meaning while reading them (bench/queue_scale.py measures how fast they are)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import event, select, text

from dossiers import store
from dossiers.status import FINAL
from dossiers.tables import dossiers
from engine.store import create_db_engine
from engine.tables import ready_tasks, task_claims
from tests.dossiers.conftest import COPY_FORM, LLTP_FORM, WORKFLOWS

CERTIFIED_COPY = "2.000815"  # level 3, same day
JUDICIAL_RECORD = "2.000488"  # level 4, 10 working days
QUEUE_INDEXES = {
    "ix_dossiers_live": ["agency_code", "instance_id"],
    "ix_dossiers_live_due": ["agency_code", "due_at"],
    "ix_ready_tasks_lane_instance_id": ["lane", "instance_id"],
    "ix_dossiers_agency_submitted": ["agency_code", "submitted_at", "code"],
    "ix_dossiers_agency_status_submitted": ["agency_code", "status", "submitted_at", "code"],
    "ix_dossiers_agency_received": ["agency_code", "received_at"],
}


def _index_sql(conn: Any, name: str) -> str:
    if conn.dialect.name == "postgresql":
        found = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :n AND schemaname = current_schema()"),
            {"n": name},
        )
    else:
        found = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name})
    return str(found.scalar_one())


def test_migration_creates_the_queue_indexes(db_url):
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            for name, columns in QUEUE_INDEXES.items():
                definition = _index_sql(conn, name)
                listed = re.search(r"\((.*?)\)", definition)
                assert listed and [c.strip() for c in listed.group(1).split(",")] == columns, definition
            for name in ("ix_dossiers_live", "ix_dossiers_live_due"):
                live = _index_sql(conn, name).replace("(", "").replace(")", "")
                assert all(str(int(status)) in live.split("WHERE")[1] for status in FINAL), live
                if conn.dialect.name == "postgresql":
                    assert "INCLUDE" in live and "overdue_at" in live
    finally:
        engine.dispose()


def test_final_statuses_are_set_only_where_a_process_ends():
    """The queue leaves out dossiers in a final status (``store._LIVE``) so that it reads the index of live
    dossiers; that changes nothing because the bundled processes set a final status only on end events
    (a withdrawal cancels the process), so such a dossier never has a ready task."""
    finals = {str(int(s)) for s in FINAL}
    seen = 0
    for path in sorted(Path(WORKFLOWS, "bpmn").rglob("*.bpmn")):
        tree = etree.parse(str(path))
        for prop in tree.iter("{*}property"):
            if prop.get("name") != "dossier_status" or prop.get("value") not in finals:
                continue
            element = prop.getparent().getparent().getparent()  # properties < extensionElements < element
            seen += 1
            kind = etree.QName(element).localname
            assert kind == "endEvent", f"{path.name}: {element.get('id')} ({kind}) sets a final status"
    assert seen >= 5


def _reference_queue(conn: Any, where: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Every ready task ``where`` matches, in queue order, as the queue read them before migration 0011."""
    conditions = store._queue_conditions(where)[1:]  # without the live-dossier condition
    query = (
        select(ready_tasks.c.id, task_claims.c.claimed_by, dossiers.c.code)
        .select_from(
            ready_tasks.join(dossiers, dossiers.c.instance_id == ready_tasks.c.instance_id).outerjoin(
                task_claims, task_claims.c.task_id == ready_tasks.c.id
            )
        )
        .where(*conditions)
        .order_by(dossiers.c.due_at.is_(None), dossiers.c.due_at, ready_tasks.c.created_at, ready_tasks.c.id)
    )
    return [tuple(row) for row in conn.execute(query)]


@pytest.fixture
def queue(desk, clock):
    """Dossiers at every stage in two agencies: waiting for the applicant, at the desk, with the specialist
    and the leader, awaiting hand-over, refused, withdrawn, returned; one task claimed."""
    codes = []
    for n in range(3):
        clock.advance(hours=1)
        code = desk.submit(CERTIFIED_COPY)["code"]
        desk.do(code, "information", actor="citizen-1")
        desk.do(code, "submit_online", {"form_data": COPY_FORM}, actor="citizen-1")
        codes.append(code)
        if n == 0:
            desk.do(code, "review", {"decision": "refuse", "refusal_reason": "Sai thẩm quyền"})
        if n == 1:
            desk.accept_and_process(code)
    for n in range(4):
        clock.advance(hours=1)
        code = desk.submit(JUDICIAL_RECORD, delivery_method="desk")["code"]
        desk.do(code, "information", actor="citizen-1")
        if n == 3:
            desk.service.withdraw(code, actor="citizen-1")
            continue
        desk.do(code, "submit_online", {"form_data": LLTP_FORM}, actor="citizen-1")
        if n:
            desk.do(code, "review", {"decision": "accept"})
            desk.service.engine.send_message("payment.confirmed", {"dossier_code": code}, {"paid_amount": 1})
        if n == 2:
            desk.do(code, "appraise", {"appraisal_opinion": "Đạt", "draft_result": "KQ"})
    task = desk.service.dossier(codes[2])["tasks"][0]
    desk.service.engine.claim_task(task["id"], "desk.officer")
    return desk


WHERES = [
    {},
    {"agency_code": "000.01.01.H26", "lanes": ["reception"]},
    {"agency_code": "000.00.14.H26", "lanes": ["reception", "specialist", "leader"]},
    {"agency_code": "000.00.14.H26", "lanes": ["specialist"], "procedure_code": JUDICIAL_RECORD},
    {"owner": "citizen-1", "lanes": ["applicant"]},
    {"agency_code": "000.00.14.H26", "deadline": "overdue"},
]


@pytest.mark.parametrize("where", WHERES)
def test_queue_pages_are_those_of_the_whole_queue(queue, where):
    engine = queue.service.engine.store.engine
    with engine.connect() as conn:
        everything = _reference_queue(conn, where)
        for limit in (1, 2, 100):
            for offset in range(0, len(everything) + 2, limit):
                items, total = store.task_queue(conn, where, offset=offset, limit=limit)
                page = [(i["id"], i["claimed_by"], i["dossier_code"]) for i in items]
                assert page == everything[offset : offset + limit]
                assert total == len(everything)
    assert any(claimed for _, claimed, _ in _reference_queue(engine.connect(), {}))


def test_counts_match_the_queue(queue):
    with queue.service.engine.store.engine.connect() as conn:
        for where in WHERES[:4]:
            counted = {row["lane"]: row["total"] for row in store.task_counts(conn, where)}
            listed: dict[str, int] = {}
            for task_id, _, _ in _reference_queue(conn, where):
                lane = conn.execute(select(ready_tasks.c.lane).where(ready_tasks.c.id == task_id)).scalar()
                listed[lane] = listed.get(lane, 0) + 1
            assert counted == listed


def _open_tasks(conn: Any) -> set[tuple[Any, ...]]:
    return {
        tuple(row)
        for row in conn.execute(text("SELECT task_id, instance_id, agency_code, lane FROM dossier_tasks"))
    }


def _ready_dossier_tasks(conn: Any) -> set[tuple[Any, ...]]:
    query = (
        "SELECT r.id, r.instance_id, d.agency_code, r.lane "
        "FROM ready_tasks r JOIN dossiers d ON d.instance_id = r.instance_id"
    )
    return {tuple(row) for row in conn.execute(text(query))}


def test_the_open_tasks_follow_the_ready_tasks_of_every_dossier(queue):
    """The tracker keeps ``dossier_tasks`` equal to the dossiers' ready tasks through every stage: submitted,
    answered, refused, accepted, paid, appraised, withdrawn, claimed."""
    with queue.service.engine.store.engine.connect() as conn:
        mirrored = _open_tasks(conn)
        assert mirrored == _ready_dossier_tasks(conn)
        assert {lane for *_, lane in mirrored} >= {"reception", "specialist", "leader"}


def test_the_open_tasks_follow_instances_loaded_from_the_database(desk):
    """When the engine has not got the instance in memory (another process served the previous step), the
    tracker reads which open tasks are recorded instead of trusting a previous projection it lacks."""
    engine = desk.service.engine
    code = desk.submit(CERTIFIED_COPY)["code"]
    for element, data in (("information", {}), ("submit_online", {"form_data": COPY_FORM})):
        engine.instances.take(desk.service.dossier(code)["instance_id"])  # forget it: a cold load follows
        desk.do(code, element, data, actor="citizen-1")
    with engine.store.engine.connect() as conn:
        mirrored = _open_tasks(conn)
        assert mirrored == _ready_dossier_tasks(conn)
        assert {lane for *_, lane in mirrored} == {"reception"}


def test_the_migration_fills_the_open_tasks_from_the_ready_tasks(queue):
    from alembic import command

    from motcua.schema import alembic_config, upgrade

    engine = queue.service.engine.store.engine
    with engine.connect() as conn:
        before = _open_tasks(conn)
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")
    upgrade(engine)
    with engine.connect() as conn:
        assert _open_tasks(conn) == before == _ready_dossier_tasks(conn)


def test_overdue_and_due_soon_counts_follow_the_dossier_flags(queue, clock):
    """An official's counts (read from the open tasks and the flagged dossiers) equal the flags of the
    dossiers behind the queue's rows."""
    official = {"agency_code": "000.00.14.H26", "lanes": ["reception", "specialist", "leader"]}
    with queue.service.engine.store.engine.begin() as conn:
        rows = store.task_queue(conn, official, limit=100)[0]
        codes = sorted({row["dossier_code"] for row in rows})
        assert len(codes) >= 2
        store.set_mark(conn, "overdue_at", codes[:1], clock.now())
        store.set_mark(conn, "due_soon_at", codes[1:2], clock.now())
    with queue.service.engine.store.engine.connect() as conn:
        expected: dict[str, dict[str, int]] = {}
        for row in store.task_queue(conn, official, limit=100)[0]:
            lane = expected.setdefault(row["lane"], {"total": 0, "overdue": 0, "due_soon": 0})
            lane["total"] += 1
            lane["overdue"] += row["overdue_at"] is not None
            lane["due_soon"] += row["due_soon_at"] is not None and row["overdue_at"] is None
        counted = {
            row["lane"]: {k: row[k] for k in ("total", "overdue", "due_soon")}
            for row in store.task_counts(conn, official)
        }
    assert counted == expected
    assert sum(lane["overdue"] for lane in counted.values()) >= 1
    assert sum(lane["due_soon"] for lane in counted.values()) >= 1


def test_the_queue_can_read_the_live_dossier_index(queue):
    """On PostgreSQL the queue's statements can use ``ix_dossiers_live`` (its predicate is provable from the
    queries, whatever their parameters), the official's counts ``dossier_tasks`` and ``ix_dossiers_flagged``,
    and the official's dossier list an agency index.  The test tables
    are tiny, so sequential scans and the other agency indexes are ruled out (inside a transaction rolled
    back) to see which index the planner could take; bench/queue_scale.py shows the plans at 1,000,000."""
    engine = queue.service.engine.store.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL plan")
    official = {"agency_code": "000.00.14.H26", "lanes": ["reception"]}
    with engine.connect() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        listing = _explained(
            conn, lambda c: store.list_dossiers(c, {"agency_code": "000.00.14.H26"}, limit=20)
        )
        assert all("ix_dossiers_agency" in plan for plan in listing), listing
        for other in (
            "agency_submitted",
            "agency_status_submitted",
            "agency_received",
            "status",
            "owner",
            "open_due",
            "due_at",
        ):
            conn.exec_driver_sql(f"DROP INDEX ix_dossiers_{other}")
        # (statement by statement: the index each can read)
        for call, indexes in (
            # an official's plain queue: counted on the agency's open tasks, its page by live due date
            (
                lambda c: store.task_queue(c, official, limit=20),
                ("ix_dossier_tasks_agency_lane", "ix_dossiers_live"),
            ),
            # with a filter on the dossier: counted over the live (or the flagged) dossiers
            (
                lambda c: store.task_queue(c, {**official, "deadline": "overdue"}, offset=500, limit=20),
                ("ix_dossiers_live|ix_dossiers_flagged",),
            ),
            # the counts: the flagged dossiers, then the open tasks per lane
            (
                lambda c: store.task_counts(c, official),
                (
                    "ix_dossiers_flagged|ix_dossiers_live|ix_dossier_tasks_agency_lane",
                    "ix_dossier_tasks_agency_lane",
                ),
            ),
        ):
            plans = _explained(conn, call)
            assert len(plans) >= len(indexes), plans
            for index, plan in zip(indexes, plans, strict=False):
                assert any(name in plan for name in index.split("|")), (index, plans)
        conn.rollback()


def _explained(conn: Any, call: Any) -> list[str]:
    """The EXPLAIN output of every statement ``call`` runs on ``conn``."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", record)
    try:
        call(conn)
    finally:
        event.remove(conn, "before_cursor_execute", record)
    return ["\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {s}", p)) for s, p in seen]
