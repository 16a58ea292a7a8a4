"""Writes queued in a PostgreSQL unit's pipeline straight through libpq, without psycopg's cursor.

A unit of work on PostgreSQL queues its writes in the connection's pipeline and sends them with its
``COMMIT`` (``Store.unit_of_work``).  Nobody reads what those writes return, yet ``Cursor.execute`` costs
about 15-40 µs of Python per statement: a cursor, query conversion, adaptation of each value, the prepared
statement bookkeeping, a flush with a ``poll`` per statement, and the result set attached to the cursor.  A
completion over HTTP queues a dozen such writes, a unit of the engine five to eight.

``queue_write`` does the part that matters: it turns the parameters into PostgreSQL's text format, prepares
the statement once per server connection (a named statement, ``motcua_w<n>``, so the server parses and plans
it once) and hands it to libpq, which keeps it until the unit sends what it has queued: with its next read,
before it serialises the state (``send_queued``: one ``send`` without waiting, so that the server writes while
the unit goes on), or with its COMMIT.
The results are left to psycopg's pipeline, which checks each of them in order: an error of a queued write
fails the unit exactly as it did through the cursor (``motcua_written``, ``motcua_claim_free``, a constraint).

``queue_command`` queues a unit's ``BEGIN`` and ``COMMIT`` the same way (unnamed, without parameters): a
cursor's execute for each of them cost more than the rest of a small unit's client work on the database.

A connection whose ``prepare_threshold`` is None (prepared statements turned off, as behind a pooler that
cannot keep them) gets each write as an unnamed statement instead.

What a statement is prepared as is only recorded once the server has confirmed it, so an aborted pipeline
(an earlier statement failed) never leaves a statement thought prepared that the server does not have.

Values are sent in their text form with the types psycopg would give them (a string as "unknown", so that
the server infers its type from the statement, as psycopg does).  A value of another kind (``queue_write``
raises ``Unsupported`` before anything is queued) is left to the cursor by the caller.

This reaches into psycopg's pipeline (its command and result queues, its prepared-statement manager's
``clear``), which is why ``pyproject.toml`` pins psycopg to 3.3.x; ``tests/engine/test_pipeline_writes.py``
covers each of those contacts.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import errors as psycopg_errors
from psycopg import pq

_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_PIPELINE_ABORTED = pq.ExecStatus.PIPELINE_ABORTED

_names = itertools.count(1)
_names_lock = threading.Lock()
_statement_names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}


class Unsupported(TypeError):
    """A value ``queue_write`` has no text form for; the caller runs the statement on a cursor instead."""


def numbered(sql: str, marker: str = "?") -> str:
    """Return ``sql`` with each ``marker`` (``?`` or ``%s``) replaced by PostgreSQL's ``$1``, ``$2``, ..."""
    count = itertools.count(1)
    return re.sub(re.escape(marker), lambda _m: f"${next(count)}", sql)


_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


def numbered_pyformat(sql: str) -> tuple[str, list[str]]:
    """Return ``sql`` (``%(name)s`` markers, ``%%`` for a percent sign) with ``$n`` markers, and the names in
    the order of their numbers (a name used twice gets one number)."""
    order: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _PYFORMAT.sub(replace, sql), order


# PostgreSQL type oids of the values sent (0: unknown, the server infers the type from the statement).
_OIDS: dict[type, int] = {
    str: 0,
    bool: 16,
    int: 20,  # bigint: assigned to or compared with integer columns as psycopg's smaller types would be
    float: 701,
    Decimal: 1700,
    UUID: 2950,
    date: 1082,
    time: 1083,
}
_TIMESTAMPTZ, _TIMESTAMP, _NUMERIC = 1184, 1114, 1700
_BIGINT = range(-(2**63), 2**63)


def text_value(value: Any) -> tuple[int, bytes | None]:  # noqa: PLR0911 - one return per kind
    """Return a parameter's type oid and its text form, as psycopg would type it.

    Raises:
        Unsupported: for a value of another kind than None, str, bool, int, float, Decimal, UUID, date,
            time or datetime.
    """
    if value is None:
        return 0, None
    kind = type(value)
    if kind is str:
        return 0, value.encode()
    if kind is datetime:
        return (_TIMESTAMPTZ if value.tzinfo is not None else _TIMESTAMP), value.isoformat().encode()
    if kind is bool:
        return 16, b"t" if value else b"f"
    if kind is int:
        return (20 if value in _BIGINT else _NUMERIC), str(value).encode()
    oid = _OIDS.get(kind)
    if oid is None:
        raise Unsupported(f"no text form for a {kind.__name__} parameter")
    if kind is float:
        return oid, repr(value).encode()
    if kind is date or kind is time:
        return oid, value.isoformat().encode()
    return oid, str(value).encode()


class _Prepared:
    """The server connection's named statements: those the server confirmed, and those whose PREPARE is on
    its way.  psycopg sends ``DEALLOCATE ALL`` after a rollback (its ``PrepareManager.clear``), which drops
    ours too: ``_watched`` hooks that, and a confirmation sent before it no longer counts (``generation``)."""

    def __init__(self) -> None:
        self.confirmed: set[bytes] = set()
        self.pending: set[bytes] = set()
        self.generation = 0

    def forget(self) -> None:
        """Treat every statement as unprepared (the server deallocated them, or may have)."""
        self.confirmed.clear()
        self.pending.clear()
        self.generation += 1


def _watched(raw: Any) -> _Prepared:
    prepared: _Prepared | None = getattr(raw, "_motcua_prepared", None)
    if prepared is not None:
        return prepared
    prepared = _Prepared()
    manager = raw._prepared
    clear = manager.clear

    def clear_and_forget() -> bool:
        deallocating = bool(clear())
        if deallocating:  # psycopg is about to send DEALLOCATE ALL
            prepared.forget()
        return deallocating

    manager.clear = clear_and_forget
    raw._motcua_prepared = prepared
    return prepared


def forget_prepared(raw: Any) -> None:
    """Treat ``raw``'s statements as unprepared (after an error naming one the server did not know)."""
    prepared: _Prepared | None = getattr(raw, "_motcua_prepared", None)
    if prepared is not None:
        prepared.forget()


class _PrepareResult:
    """Takes the result of a queued PREPARE in psycopg's pipeline (where a cursor would): records the
    statement as prepared once the server confirmed it, and raises the error otherwise."""

    def __init__(self, prepared: _Prepared, name: bytes, encoding: str) -> None:
        self.prepared = prepared
        self.name = name
        self.encoding = encoding
        self.generation = prepared.generation

    def _check_results(self, results: Sequence[Any]) -> None:
        prepared = self.prepared
        current = self.generation == prepared.generation
        if current:
            prepared.pending.discard(self.name)
        (result,) = results
        if result.status == _COMMAND_OK:
            if current:
                prepared.confirmed.add(self.name)
        elif result.status == _PIPELINE_ABORTED:
            raise psycopg_errors.PipelineAborted("pipeline aborted")
        else:
            raise psycopg_errors.error_from_result(result, encoding=self.encoding)

    def _set_results(self, results: Sequence[Any]) -> None:
        pass


def _statement_name(sql: bytes, oids: tuple[int, ...]) -> bytes:
    key = (sql, oids)
    name = _statement_names.get(key)
    if name is None:
        with _names_lock:
            name = _statement_names.setdefault(key, b"motcua_w%d" % next(_names))
    return name


def in_pipeline(raw: Any) -> bool:
    """Whether the psycopg connection ``raw`` is in a pipeline (a PostgreSQL unit of work)."""
    return raw._pipeline is not None


def queue_write(raw: Any, sql: bytes, rows: Sequence[Sequence[Any]]) -> None:
    """Queue ``sql`` (``$n`` markers, UTF-8) once per parameter row in ``raw``'s pipeline.

    Args:
        raw: a psycopg connection in a pipeline (``in_pipeline``).
        sql: a statement whose result nobody reads.
        rows: the parameters of each execution.

    Raises:
        Unsupported: a parameter has no text form here; nothing was queued.
    """
    encoded = [[text_value(value) for value in row] for row in rows]
    pgconn = raw.pgconn
    results = raw._pipeline.result_queue
    prepared = _watched(raw)
    _after_psycopgs_commands(raw)
    named = raw.prepare_threshold is not None  # None: prepared statements are turned off (a pooler)
    for row in encoded:
        oids = tuple(oid for oid, _text in row)
        if not named:
            pgconn.send_query_params(sql, [text for _oid, text in row], oids)
            results.append(None)
            continue
        name = _statement_name(sql, oids)
        if name not in prepared.confirmed and name not in prepared.pending:
            pgconn.send_prepare(name, sql, oids)
            prepared.pending.add(name)
            results.append((_PrepareResult(prepared, name, pgconn._encoding), None))
        pgconn.send_query_prepared(name, [text for _oid, text in row])
        results.append(None)
    # Nothing is sent here: libpq keeps the statements until the unit's next read, its ``send_queued`` (just
    # before the state is serialised) or its COMMIT, so that a unit's writes cost one ``send`` and wake the
    # server once, instead of one each (libpq itself sends whenever 8 kB are waiting).


def send_queued(raw: Any) -> None:
    """Hand what the unit has queued to the socket now, without waiting, so that the server works on it
    while the unit goes on; whatever the socket does not take now goes with the next flush."""
    raw.pgconn.flush()


def queue_command(raw: Any, sql: bytes) -> None:
    """Queue a statement without parameters (``BEGIN``, ``COMMIT``) in ``raw``'s pipeline, as an unnamed
    statement; its result, an error included, is checked by psycopg's pipeline like a queued write's."""
    _after_psycopgs_commands(raw)
    raw.pgconn.send_query_params(sql, None)
    raw._pipeline.result_queue.append(None)


def _after_psycopgs_commands(raw: Any) -> None:
    """Send the commands psycopg left unsent in its pipeline, so that what is queued next goes after them."""
    pipeline = raw._pipeline
    if pipeline.command_queue:
        raw.wait(pipeline._communicate_gen())
