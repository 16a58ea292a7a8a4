"""Every query of the dossier domain, as functions of a connection inside the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from engine.fast_sql import FastStatement

from .calendar import CalendarOverrides
from .reference_cache import CACHE
from .status import FINAL, PAUSING
from .tables import (
    calendar_days,
    dossier_counters,
    dossier_handovers,
    dossier_pauses,
    dossier_tasks,
    dossiers,
    procedures,
)

Row = Any
_JSON_COLUMNS = ("applicant", "supplement_items", "apology")


# -- dossier codes ----------------------------------------------------------------------------------
def next_sequence(conn: Connection, agency_code: str, day: date) -> int:
    """Take the next sequence number of an agency for a day, atomically.

    The counter row is locked until the transaction ends, so concurrent receipts get distinct numbers and a
    rolled-back receipt gives its number back (codes have no gaps).
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stamp = day.strftime("%y%m%d")
    stmt = dialect.insert(dossier_counters).values(agency_code=agency_code, day=stamp, last=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["agency_code", "day"], set_={"last": dossier_counters.c.last + 1}
    ).returning(dossier_counters.c.last)
    return int(conn.execute(stmt).scalar_one())


def dossier_code(agency_code: str, day: date, sequence: int) -> str:
    """Return ``<agency code>-<YYMMDD>-<NNNN>`` (Circular 01/2018/TT-VPCP)."""
    return f"{agency_code}-{day:%y%m%d}-{sequence:04d}"


# -- dossiers ---------------------------------------------------------------------------------------
def _encode(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (json.dumps(v, ensure_ascii=False, default=str) if k in _JSON_COLUMNS and v is not None else v)
        for k, v in values.items()
    }


def decode(row: Row) -> dict[str, Any]:
    """Return a dossier row as a dict with its JSON columns decoded."""
    out = dict(row._mapping)
    for key in _JSON_COLUMNS:
        if out.get(key) is not None:
            out[key] = json.loads(out[key])
    return out


def insert_dossier(conn: Connection, values: Mapping[str, Any]) -> None:
    """Insert a dossier row."""
    conn.execute(insert(dossiers).values(**_encode(values)))


# Built once and run on the driver's cursor (``FastStatement``): every step of a dossier reads it.
_DOSSIER = select(dossiers).where(dossiers.c.code == bindparam("which_code"))
_GET_DOSSIER = FastStatement(_DOSSIER)
_GET_DOSSIER_FOR_UPDATE = FastStatement(_DOSSIER.with_for_update())


def get_dossier(conn: Connection, code: str, *, for_update: bool = False) -> dict[str, Any] | None:
    """Return a dossier by code (locking its row when asked), or None."""
    return get_dossier_later(conn, code, for_update=for_update)()


def get_dossier_later(
    conn: Connection, code: str, *, for_update: bool = True
) -> Callable[[], dict[str, Any] | None]:
    """Send the read of a dossier (locked for update unless asked not to) now; return a function that
    gives it (or None)."""
    locking = for_update and conn.dialect.name == "postgresql"
    pending = (_GET_DOSSIER_FOR_UPDATE if locking else _GET_DOSSIER).first_later(conn, {"which_code": code})

    def result() -> dict[str, Any] | None:
        row = pending()
        return decode(row) if row is not None else None

    return result


# One statement per set of columns written (a step writes one of a few sets), built at first use; queued
# in the engine's pipeline.
_UPDATES: dict[tuple[str, ...], FastStatement] = {}


def _update_of(columns: tuple[str, ...]) -> FastStatement:
    statement = _UPDATES.get(columns)
    if statement is None:
        unknown = [name for name in columns if name not in dossiers.c]
        if unknown:
            raise KeyError(f"dossiers has no column {', '.join(unknown)}")
        query = (
            update(dossiers)
            .where(dossiers.c.code == bindparam("which_code"))
            .values({name: bindparam(name) for name in columns})
        )
        statement = _UPDATES.setdefault(columns, FastStatement(query))
    return statement


def update_dossier(conn: Connection, code: str, values: Mapping[str, Any]) -> None:
    """Update columns of a dossier."""
    if values:
        _update_of(tuple(sorted(values))).run(conn, {**_encode(values), "which_code": code})


def list_dossiers(
    conn: Connection, where: Mapping[str, Any], *, offset: int = 0, limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """Return one page of dossiers, newest first (code breaks ties), and how many match in all.

    ``where`` may hold owner, agency_code and status.
    """
    conditions = [dossiers.c[key] == value for key, value in where.items() if value is not None]
    total = conn.execute(select(func.count()).select_from(dossiers).where(*conditions)).scalar_one()
    query = (
        select(dossiers)
        .where(*conditions)
        .order_by(dossiers.c.submitted_at.desc(), dossiers.c.code.desc())
        .offset(offset)
        .limit(limit)
    )
    return [decode(row) for row in conn.execute(query)], int(total)


# -- deadline marks (dossiers/deadlines.py) ---------------------------------------------------------
def _running() -> list[ColumnElement[bool]]:
    """Conditions of a dossier whose processing clock runs: received, not finished, not paused."""
    p = dossier_pauses.c
    open_pause = select(p.id).where(p.dossier_code == dossiers.c.code, p.ended_at.is_(None)).exists()
    return [
        dossiers.c.finished_at.is_(None),
        dossiers.c.status.not_in([int(s) for s in PAUSING]),
        ~open_pause,
    ]


def unmarked_due(
    conn: Connection,
    mark: str,
    *,
    due_from: datetime | None = None,
    due_through: datetime | None = None,
    due_before: datetime | None = None,
    limit: int,
    claim: bool = False,
) -> list[dict[str, Any]]:
    """Return running dossiers whose ``mark`` column (due_soon_at, overdue_at) is unset and whose due date
    lies in the given range (``due_from <= due_at``, ``due_at <= due_through``, ``due_at < due_before``),
    earliest due first: code, procedure_code, instance_id, status, due_at.

    With ``claim`` the rows are locked until the transaction ends, skipping rows another transaction holds
    (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite writers are already serialized).
    """
    d = dossiers.c
    bounds: list[ColumnElement[bool]] = [d.due_at.is_not(None), d[mark].is_(None)]
    bounds += [d.due_at >= due_from] if due_from is not None else []
    bounds += [d.due_at <= due_through] if due_through is not None else []
    bounds += [d.due_at < due_before] if due_before is not None else []
    query = (
        select(d.code, d.procedure_code, d.instance_id, d.status, d.due_at)
        .where(*bounds, *_running())
        .order_by(d.due_at, d.code)
        .limit(limit)
    )
    if claim:
        query = query.with_for_update(of=dossiers, skip_locked=True)
    return [dict(row._mapping) for row in conn.execute(query)]


def set_mark(conn: Connection, mark: str, codes: Sequence[str], at: datetime) -> list[str]:
    """Set the ``mark`` column of the dossiers ``codes`` that do not have it yet; return those codes."""
    if not codes:
        return []
    d = dossiers.c
    stmt = (
        update(dossiers)
        .where(d.code.in_(codes), d[mark].is_(None))
        .values({mark: at, "updated_at": at})
        .returning(d.code)
    )
    return [row.code for row in conn.execute(stmt)]


def deadline_condition(deadline: str) -> ColumnElement[bool]:
    """Return the SQL condition of a deadline filter: due_soon (about to be late, not yet late), overdue, or
    apology_required (either, with no apology letter yet); only dossiers not finished match."""
    d = dossiers.c
    running = d.finished_at.is_(None)
    due_soon = and_(running, d.due_soon_at.is_not(None), d.overdue_at.is_(None))
    overdue = and_(running, d.overdue_at.is_not(None))
    if deadline == "due_soon":
        return due_soon
    if deadline == "overdue":
        return overdue
    return and_(or_(due_soon, overdue), d.apology.is_(None))


# -- pauses and handovers ---------------------------------------------------------------------------
def open_pause(conn: Connection, code: str, reason: str, at: datetime) -> None:
    """Record that the clock of a dossier stopped at ``at``."""
    conn.execute(insert(dossier_pauses).values(dossier_code=code, reason=reason, started_at=at))


def close_pauses(conn: Connection, code: str, at: datetime) -> None:
    """End every open pause of a dossier at ``at``."""
    p = dossier_pauses.c
    conn.execute(
        update(dossier_pauses).where(p.dossier_code == code, p.ended_at.is_(None)).values(ended_at=at)
    )


def pauses_of(conn: Connection, code: str) -> list[dict[str, Any]]:
    """Return the pauses of a dossier in order."""
    p = dossier_pauses.c
    query = select(p.reason, p.started_at, p.ended_at).where(p.dossier_code == code).order_by(p.id)
    return [dict(row._mapping) for row in conn.execute(query)]


_HANDOVER_COLUMNS = ("dossier_code", "at", "element_id", "from_role", "to_role", "actor", "result", "note")
_INSERT_HANDOVER = FastStatement(  # inline: no RETURNING of the new id, which nobody reads
    insert(dossier_handovers).values({name: bindparam(name) for name in _HANDOVER_COLUMNS}).inline()
)


def add_handovers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append hops to the process-control slip (queued in the engine's pipeline)."""
    if rows:
        _INSERT_HANDOVER.run(conn, [{name: row.get(name) for name in _HANDOVER_COLUMNS} for row in rows])


def handovers_of(conn: Connection, code: str) -> list[dict[str, Any]]:
    """Return the process-control slip of a dossier in order."""
    h = dossier_handovers.c
    query = select(dossier_handovers).where(h.dossier_code == code).order_by(h.at, h.id)
    return [dict(row._mapping) for row in conn.execute(query)]


# -- catalogue and calendar -------------------------------------------------------------------------
def upsert_procedure(conn: Connection, values: Mapping[str, Any]) -> None:
    """Insert or replace a procedure of the catalogue."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(procedures).values(**values)
    changes = {k: stmt.excluded[k] for k in values if k != "code"}
    conn.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=changes))
    CACHE.forget(conn, ("procedure", values["code"]))


def get_procedure(conn: Connection, code: str) -> dict[str, Any] | None:
    """Return the catalogue record of a procedure (the stored JSON, with its level and BPMN), or None."""
    row = conn.execute(select(procedures).where(procedures.c.code == code)).first()
    return _procedure(row) if row is not None else None


def procedure_terms(conn: Connection, code: str) -> Mapping[str, Any] | None:
    """``get_procedure`` through the reference cache (``reference_cache``): for reading, not changing."""
    return CACHE.get(conn, ("procedure", code), lambda c: get_procedure(c, code))


def list_procedures(conn: Connection) -> list[dict[str, Any]]:
    """Return the whole catalogue, ordered by code."""
    return [_procedure(row) for row in conn.execute(select(procedures).order_by(procedures.c.code))]


def _procedure(row: Row) -> dict[str, Any]:
    record = json.loads(row.record)
    return {**record, "decree_42_class": row.decree_class, "updated_at": row.updated_at}


def calendar_overrides(conn: Connection) -> CalendarOverrides:
    """Return the admin table of extra days off and make-up working days (through the reference cache)."""
    return CACHE.get(conn, "calendar", _read_calendar_overrides)


def _read_calendar_overrides(conn: Connection) -> CalendarOverrides:
    rows = conn.execute(select(calendar_days.c.day, calendar_days.c.working)).all()
    return CalendarOverrides(
        days_off=frozenset(r.day for r in rows if not r.working),
        working_days=frozenset(r.day for r in rows if r.working),
    )


def set_calendar_day(conn: Connection, values: Mapping[str, Any]) -> None:
    """Insert or replace one override day (day, working, note, created_by, created_at)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(calendar_days).values(**values)
    changes = {k: stmt.excluded[k] for k in values if k != "day"}
    conn.execute(stmt.on_conflict_do_update(index_elements=["day"], set_=changes))
    CACHE.forget(conn, "calendar")


def calendar_days_list(conn: Connection) -> list[dict[str, Any]]:
    """Return the override days in date order."""
    rows = conn.execute(select(calendar_days).order_by(calendar_days.c.day))
    return [dict(row._mapping) for row in rows]


def add_calendar_day_if_absent(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Insert an override day unless the day already has one; return whether it was added."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(calendar_days).values(**values).on_conflict_do_nothing(index_elements=["day"])
    CACHE.forget(conn, "calendar")
    return conn.execute(stmt.returning(calendar_days.c.day)).first() is not None


def delete_calendar_day(conn: Connection, day: date) -> bool:
    """Remove the override of a day; return whether there was one."""
    CACHE.forget(conn, "calendar")
    return bool(conn.execute(delete(calendar_days).where(calendar_days.c.day == day)).rowcount)


# -- the task queue ------------------------------------------------------------------------------------
# A dossier in a final status (not received, withdrawn, stopped, result returned) has no work left: the
# processes set those statuses only at their end events, and a withdrawal cancels the process.  Saying so in
# every queue query lets PostgreSQL read the small partial indexes of live dossiers (``ix_dossiers_live*``)
# instead of every dossier an agency ever received.  Literals, not bound parameters, so that a prepared
# (generic) plan can still prove the index predicate.
_LIVE = dossiers.c.status.not_in([literal_column(str(int(s))) for s in sorted(FINAL)])


def _queue_source() -> Any:
    """The ready tasks joined to their dossiers (the rows of every task-queue query)."""
    from engine.tables import ready_tasks

    return ready_tasks.join(dossiers, dossiers.c.instance_id == ready_tasks.c.instance_id)


def _queue_conditions(where: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """Return the SQL conditions of a task-queue restriction (see ``task_queue``)."""
    from engine.tables import ready_tasks

    clauses = {
        "agency_code": lambda v: dossiers.c.agency_code == v,
        "lanes": lambda v: ready_tasks.c.lane.in_(v),
        "procedure_code": lambda v: dossiers.c.procedure_code == v,
        "status": lambda v: dossiers.c.status == v,
        "due_before": lambda v: dossiers.c.due_at < v,
        "owner": lambda v: dossiers.c.owner == v,
        "deadline": deadline_condition,
    }
    return [_LIVE, *(clauses[key](value) for key, value in where.items() if value is not None)]


def task_queue(
    conn: Connection, where: Mapping[str, Any], *, offset: int = 0, limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """Return one page of ready dossier tasks, earliest due date first (stable), and how many match in all.

    ``where`` may hold: agency_code and lanes (an official's queue), owner (an applicant's own dossiers),
    procedure_code, status, due_before, deadline (``deadline_condition``).

    The total is counted first (a merge join of two small indexes: ``ix_dossiers_live`` and
    ``ix_ready_tasks_lane_instance_id``); the page is then found on the queue's keys alone (due date,
    creation, task id), walking an agency's live dossiers by due date (``ix_dossiers_live_due``) until it is
    full, and only its rows are read in full, with their claims.  (A window count in the page query would
    save the counting pass, but PostgreSQL 15 then plans as if it could stop early and reads the whole
    queue by nested loop.)
    """
    from engine.tables import ready_tasks, task_claims

    conditions = _queue_conditions(where)
    if _agency_lanes_only(where):
        total = sum(row.total for row in conn.execute(_open_task_totals(where)))
    else:
        counted = select(func.count()).select_from(_queue_source()).where(*conditions)
        total = conn.execute(counted).scalar_one()
    if offset >= total:
        return [], int(total)
    keys = (dossiers.c.due_at, ready_tasks.c.created_at, ready_tasks.c.id.label("task_id"))
    page = (
        select(*keys)
        .select_from(_queue_source())
        .where(*conditions)
        # Undated dossiers last, spelled NULLS LAST so that ``ix_dossiers_live_due`` gives this order.
        .order_by(dossiers.c.due_at.asc().nulls_last(), ready_tasks.c.created_at, ready_tasks.c.id)
        .offset(offset)
        .limit(limit)
        .subquery("page")
    )
    query = (
        select(
            ready_tasks,
            task_claims.c.claimed_by,
            task_claims.c.claimed_at,
            dossiers.c.code.label("dossier_code"),
            dossiers.c.procedure_code,
            dossiers.c.status.label("dossier_status"),
            dossiers.c.due_at,
            dossiers.c.agency_code,
            dossiers.c.due_soon_at,
            dossiers.c.overdue_at,
            dossiers.c.finished_at.label("dossier_finished_at"),
            dossiers.c.apology.is_not(None).label("dossier_apologised"),
        )
        .select_from(
            page.join(ready_tasks, ready_tasks.c.id == page.c.task_id)
            .join(dossiers, dossiers.c.instance_id == ready_tasks.c.instance_id)
            .outerjoin(task_claims, task_claims.c.task_id == ready_tasks.c.id)
        )
        .order_by(page.c.due_at.asc().nulls_last(), page.c.created_at, page.c.task_id)
    )
    return [dict(row._mapping) for row in conn.execute(query)], int(total)


# Queued in the engine's pipeline: a completion sends them with its COMMIT.
_CLEAR_OPEN_TASKS = FastStatement(
    delete(dossier_tasks).where(dossier_tasks.c.instance_id == bindparam("instance_id"))
)
_DELETE_OPEN_TASK = FastStatement(delete(dossier_tasks).where(dossier_tasks.c.task_id == bindparam("id")))
_INSERT_OPEN_TASK = FastStatement(
    insert(dossier_tasks).values(
        {name: bindparam(name) for name in ("task_id", "instance_id", "agency_code", "lane")}
    )
)


def sync_open_tasks(
    conn: Connection,
    instance_id: str,
    agency_code: str,
    ready: Mapping[str, Mapping[str, Any]],
    known: Collection[str] | None = None,
) -> None:
    """Make ``dossier_tasks`` hold exactly the ready tasks ``ready`` (task id -> row with its lane) of a
    dossier's instance, in the caller's transaction.

    ``known``: the ids it holds now when the caller knows them (the engine's previous projection); when it
    does not (an instance just read from the database), the instance's rows are deleted and written again,
    which costs no round trip in the engine's pipeline, where reading them would."""
    if known is None:
        _CLEAR_OPEN_TASKS.run(conn, {"instance_id": instance_id})
    have = set(known or ())
    gone = [task_id for task_id in have if task_id not in ready]
    if gone:
        _DELETE_OPEN_TASK.run(conn, [{"id": task_id} for task_id in gone])
    added = [
        {"task_id": task_id, "instance_id": instance_id, "agency_code": agency_code, "lane": row.get("lane")}
        for task_id, row in ready.items()
        if task_id not in have
    ]
    if added:
        _INSERT_OPEN_TASK.run(conn, added)


def _agency_lanes_only(where: Mapping[str, Any]) -> bool:
    """Whether a queue restriction is an agency's lanes and nothing more (an official's plain queue)."""
    used = {key for key, value in where.items() if value is not None}
    return "agency_code" in used and used <= {"agency_code", "lanes"}


def _open_task_totals(where: Mapping[str, Any]) -> Any:
    """Per lane, how many open tasks an agency has (``dossier_tasks`` alone: one index range per lane)."""
    t = dossier_tasks.c
    query = select(t.lane, func.count().label("total")).where(t.agency_code == where["agency_code"])
    if where.get("lanes") is not None:
        query = query.where(t.lane.in_(where["lanes"]))
    return query.group_by(t.lane)


def _flagged(deadline: str) -> Any:
    """How many of a group's rows have the dossier flag ``deadline`` (``deadline_condition``)."""
    return func.coalesce(func.sum(case((deadline_condition(deadline), 1), else_=0)), 0)


def _flagged_counts(conn: Connection, where: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Per lane, (overdue, due soon) open tasks of an agency: its flagged running dossiers
    (``ix_dossiers_flagged``) joined to their open tasks."""
    d, t = dossiers.c, dossier_tasks.c

    query = (
        select(t.lane, _flagged("overdue").label("overdue"), _flagged("due_soon").label("due_soon"))
        .select_from(dossiers.join(dossier_tasks, t.instance_id == d.instance_id))
        .where(
            d.agency_code == where["agency_code"],
            # the index's own predicate, spelled as it is, so that PostgreSQL can prove it
            d.finished_at.is_(None),
            or_(d.overdue_at.is_not(None), d.due_soon_at.is_not(None)),
            _LIVE,
        )
        .group_by(t.lane)
    )
    if where.get("lanes") is not None:
        query = query.where(t.lane.in_(where["lanes"]))
    return {row.lane: (int(row.overdue), int(row.due_soon)) for row in conn.execute(query)}


def task_counts(conn: Connection, where: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Count the ready dossier tasks matching ``where`` (as ``task_queue``) per lane:
    ``{"lane", "total", "overdue", "due_soon"}`` for each lane that has tasks; the deadline counts follow
    ``deadline_condition`` (the dossier flags of the queue's rows).

    An official's plain counts (an agency and its lanes) read ``dossier_tasks`` and the flagged dossiers
    only; any other restriction is one grouped query over the ready tasks joined to their dossiers.
    """
    from engine.tables import ready_tasks

    if _agency_lanes_only(where):
        flags = _flagged_counts(conn, where)
        totals = sorted((row.lane, int(row.total)) for row in conn.execute(_open_task_totals(where)))
        return [
            {
                "lane": lane,
                "total": total,
                "overdue": flags.get(lane, (0, 0))[0],
                "due_soon": flags.get(lane, (0, 0))[1],
            }
            for lane, total in totals
            if total
        ]

    query = (
        select(
            ready_tasks.c.lane,
            func.count().label("total"),
            _flagged("overdue").label("overdue"),
            _flagged("due_soon").label("due_soon"),
        )
        .select_from(_queue_source())
        .where(*_queue_conditions(where))
        .group_by(ready_tasks.c.lane)
        .order_by(ready_tasks.c.lane)
    )
    return [
        {
            "lane": row.lane,
            "total": int(row.total),
            "overdue": int(row.overdue),
            "due_soon": int(row.due_soon),
        }
        for row in conn.execute(query)
    ]
