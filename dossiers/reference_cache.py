"""Reference data that the hot path reads and officials rarely change, kept a few seconds per process.

A task completion that receives a dossier computes its due date from the procedure's processing time and the
working calendar (the holidays and make-up days an administrator declares).  Reading both costs two queries
per completion, for data that changes a few times a year; each process keeps them ``TTL_SECONDS`` instead.

A change made through this process (the admin API, ``motcua calendar``, the catalogue import) is seen at
once: the writer drops the cached value, and drops it again when its transaction commits.  Other processes
(other API nodes and workers) see it within ``TTL_SECONDS``.  Cached values are shared: callers must not
change them.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

T = TypeVar("T")

TTL_SECONDS = 5.0


class ReferenceCache:
    """Values read from one database, per SQLAlchemy engine and key, for ``ttl`` seconds."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._items: weakref.WeakKeyDictionary[Engine, dict[Hashable, tuple[float, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, conn: Connection, key: Hashable, load: Callable[[Connection], T]) -> T:
        """Return the value of ``key``, read with ``load(conn)`` if it is not cached or is too old."""
        now = time.monotonic()
        with self._lock:
            found = self._items.get(conn.engine, {}).get(key)
        if found is not None and now - found[0] < self.ttl:
            value: T = found[1]
            return value
        value = load(conn)
        with self._lock:
            self._items.setdefault(conn.engine, {})[key] = (now, value)
        return value

    def forget(self, conn: Connection, key: Hashable | None = None) -> None:
        """Drop one cached value of the database ``conn`` is on, or all of them: now, and again when
        ``conn``'s transaction commits (a reader of this process may load the old value meanwhile)."""
        engine = conn.engine
        self._drop(engine, key)
        if conn.in_transaction():
            event.listen(conn, "commit", lambda _conn: self._drop(engine, key), once=True)

    def _drop(self, engine: Engine, key: Hashable | None) -> None:
        with self._lock:
            items = self._items.get(engine)
            if items is None:
                return
            if key is None:
                items.clear()
            else:
                items.pop(key, None)


CACHE = ReferenceCache()
