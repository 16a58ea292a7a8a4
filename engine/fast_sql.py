"""Core statements run straight on the driver's cursor, with SQLAlchemy's types still applied.

``Connection.execute`` costs 50-70 µs of Python per statement on top of the driver (execution context,
cached-compile lookup, result set-up, row objects), more than PostgreSQL needs to run a lookup by key.  Every
request runs a few such statements: the bearer token, the task's context, and in a completion the dossier
tracker's read and writes.  ``FastStatement`` compiles a Core statement once per dialect and keeps what
SQLAlchemy would compute on each execution: the SQL text, the order of the parameters, the bind processors
(``UTCDateTime`` on SQLite, say) and the result processors; each execution is then a driver call plus those
conversions.  The rows it returns are named tuples that also offer ``_mapping``, like SQLAlchemy's.

Inside a PostgreSQL unit of work (a pipeline) a write is only queued: it goes to the server with the unit's
next read, before the unit serialises its state (``UnitOfWork.send_queued``) or with its COMMIT, as the
engine's own hot statements do (``hot_sql``).  A read there is flushed and
waited for (no sync point is needed for that).  Driver errors reach ``Store.unit_of_work``, which turns them
into SQLAlchemy's exceptions and, when the database went away, has the pool replace its connections.

Only statements whose parameters are all known at compile time qualify: no ``expanding`` IN lists.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement

from .pipeline_writes import Unsupported, in_pipeline, numbered_pyformat, queue_write


class FastStatement:
    """A Core statement compiled once per dialect, executed on the DB-API cursor.

    Args:
        statement: a select, insert, update or delete with named ``bindparam`` parameters.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, str], _Plan] = {}
        self._lock = threading.Lock()

    def _plan(self, conn: Connection) -> _Plan:
        dialect = conn.dialect
        key = (dialect.name, dialect.driver)
        plan = self._plans.get(key)
        if plan is None:
            with self._lock:
                plan = self._plans.get(key) or _Plan(self.statement, dialect)
                self._plans[key] = plan
        return plan

    def first(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Any:
        """Run a query; return its first row (a named tuple with ``_mapping``), or None."""
        return self.first_later(conn, values)()

    def first_later(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Callable[[], Any]:
        """Send a query now; return a function that gives its first row (or None) when called.

        In a PostgreSQL unit of work the query travels in the pipeline while the caller goes on, and its rows
        are usually there by the time they are asked for; elsewhere it runs at once.
        """
        plan = self._plan(conn)
        cursor = _driver(conn).cursor()
        cursor.execute(plan.sql, plan.params(values))

        def result() -> Any:
            try:
                row = cursor.fetchone()
                return None if row is None else plan.row(row, cursor)
            finally:
                cursor.close()

        return result

    def all(self, conn: Connection, values: Mapping[str, Any] | None = None) -> list[Any]:
        """Run a query; return all its rows."""
        plan = self._plan(conn)
        cursor = _driver(conn).cursor()
        try:
            cursor.execute(plan.sql, plan.params(values))
            return [plan.row(row, cursor) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def run(self, conn: Connection, values: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        """Run a write once, or once per mapping of a sequence; nobody reads its result (queued in a
        PostgreSQL unit of work)."""
        plan = self._plan(conn)
        raw = _driver(conn)
        rows = [values] if isinstance(values, Mapping) else values
        if plan.queueable and rows and in_pipeline(raw):
            try:
                queue_write(raw, plan.numbered_sql, [plan.numbered_params(v) for v in rows])
                return
            except Unsupported:
                pass  # a value the cursor adapts (e.g. JSON): run it there
        cursor = raw.cursor()
        try:
            if isinstance(values, Mapping):
                cursor.execute(plan.sql, plan.params(values))
            elif len(values) == 1:  # the usual case; executemany costs several times more for one row
                cursor.execute(plan.sql, plan.params(values[0]))
            elif values:
                cursor.executemany(plan.sql, [plan.params(v) for v in values])
        finally:
            cursor.close()


def _driver(conn: Connection) -> Any:
    raw = conn.connection.driver_connection
    assert raw is not None, "the connection is closed"
    return raw


class _Plan:
    """What SQLAlchemy would work out for one execution, worked out once for a dialect."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled: Any = statement.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("FastStatement cannot run expanding or literal-execute parameters")
        self.compiled = compiled
        self.dialect = dialect
        self.sql: str = compiled.string
        self.positions: list[str] | None = list(compiled.positiontup) if compiled.positional else None
        self.binds: dict[str, Any] = dict(compiled._bind_processors)
        columns = list(compiled._result_columns)
        self.types = [entry.type for entry in columns]
        self._processors: list[Any] | None = None
        self._row_class = _row_class([entry.keyname for entry in columns]) if columns else None
        # A write without result columns, on psycopg (named ``%(name)s`` markers), can be queued through libpq
        # (``pipeline_writes``): its SQL with $n markers, and which bind each number takes.
        self.queueable = dialect.name == "postgresql" and not columns and self.positions is None
        text, self.order = numbered_pyformat(self.sql) if self.queueable else ("", [])
        self.numbered_sql = text.encode()

    def numbered_params(self, values: Mapping[str, Any] | None) -> list[Any]:
        """The parameters of ``numbered_sql``, processed, in number order."""
        processed = self.params(values)  # a dict: the plan is queueable only for named markers
        return [processed[name] for name in self.order]

    def params(self, values: Mapping[str, Any] | None) -> Any:
        """The driver's parameters: every bind, processed, as a dict or in position order."""
        given = self.compiled.construct_params(values or {})  # fills literals, checks required binds
        binds = self.binds
        processed = {k: (binds[k](v) if k in binds else v) for k, v in given.items()}
        return processed if self.positions is None else tuple(processed[k] for k in self.positions)

    def row(self, raw: Sequence[Any], cursor: Any) -> Any:
        """A driver row as a named tuple of Python values."""
        processors = self._processors
        if processors is None:  # the column types the driver reports are known after the first execution
            description = cursor.description
            processors = self._processors = [
                kind._cached_result_processor(self.dialect, column[1])
                for kind, column in zip(self.types, description, strict=True)
            ]
        assert self._row_class is not None
        return self._row_class._make(
            value if process is None or value is None else process(value)
            for process, value in zip(processors, raw, strict=True)
        )


def _row_class(names: list[str]) -> Any:
    base = collections.namedtuple("FastRow", names)  # type: ignore[misc]
    return type("FastRow", (base,), {"__slots__": (), "_mapping": property(_mapping)})


def _mapping(row: Any) -> dict[str, Any]:
    return dict(zip(row._fields, row, strict=True))
