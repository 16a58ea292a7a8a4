"""The portal's visitor counter: online now, today, this week, this month, total, without personal data.

A visitor is a keyed hash of (IP address, User-Agent) under a secret that is random per local day and lives
only in this process's memory.  When the day changes (midnight in Asia/Ho_Chi_Minh) the secret is replaced and
the old one forgotten, so a stored hash can no longer be recomputed from an IP and a User-Agent, and the same
person gets an unrelated hash the next day.  Consequently "total" counts visitor-days, not people.

One row per (day, visitor); a visit is one upsert (``hits + 1``, ``last_seen``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from engine.store import Store

from .tables import visits

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ONLINE_WINDOW = timedelta(minutes=5)


def local_day(now: datetime) -> date:
    """Return the calendar day of ``now`` in Viet Nam."""
    return now.astimezone(VN).date()


class DailySecret:
    """A random secret per local day, held in memory only and replaced when the day changes.

    Only the current day's secret is kept: asking for another day (normally the next one, after midnight)
    draws a fresh secret and drops the old one.  Thread-safe (the server answers on several threads).

    Several worker *processes* each draw their own secret, so one person reaching two workers on the same day
    counts twice; ``motcua serve`` runs one process with threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._day: date | None = None
        self._secret = b""

    def of(self, day: date) -> bytes:
        """Return the secret of ``day``, rotating it if ``day`` is not the day currently held."""
        with self._lock:
            if day != self._day:
                self._day, self._secret = day, secrets.token_bytes(32)
            return self._secret

    def visitor(self, day: date, ip: str, user_agent: str) -> str:
        """Return the 64-hex visitor id of (ip, user_agent) on ``day``: HMAC-SHA256 under the day's secret."""
        message = f"{ip}\x00{user_agent}".encode("utf-8", "surrogatepass")
        return hmac.new(self.of(day), message, hashlib.sha256).hexdigest()


DAILY_SECRET = DailySecret()  # the process's secret; tests may pass their own


def record_visit(
    conn_or_store: Connection | Store,
    ip: str,
    user_agent: str,
    now: datetime,
    *,
    secret: DailySecret = DAILY_SECRET,
) -> str:
    """Count one visit of (ip, user_agent) at ``now``; return the stored visitor id.

    One upsert on (day, visitor): a new row with ``hits = 1``, or ``hits + 1`` and ``last_seen = now``.
    Given a connection it writes inside the caller's transaction; given a store, in a transaction of its own.
    """
    if isinstance(conn_or_store, Store):
        with conn_or_store.unit_of_work() as uow:
            return record_visit(uow.conn, ip, user_agent, now, secret=secret)
    day = local_day(now)
    visitor = secret.visitor(day, ip, user_agent)
    dialect: Any = postgresql if conn_or_store.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(visits).values(day=day, visitor=visitor, first_seen=now, last_seen=now, hits=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "visitor"],
        set_={"hits": visits.c.hits + 1, "last_seen": stmt.excluded.last_seen},
    )
    conn_or_store.execute(stmt)
    return visitor


def visit_counts(conn_or_store: Connection | Store, now: datetime) -> dict[str, int]:
    """Return ``online_now, today, this_week, this_month, total`` at ``now`` in one query.

    online_now: visitors seen in the last five minutes; today / this_week (ISO, from Monday) / this_month:
    visitor-days of those local calendar periods up to today; total: every visitor-day ever recorded.
    """
    if isinstance(conn_or_store, Store):
        with conn_or_store.unit_of_work(write=False) as uow:
            return visit_counts(uow.conn, now)
    today = local_day(now)
    week = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    v = visits.c

    def since(first: date) -> Any:
        return func.count(case((and_(v.day >= first, v.day <= today), 1)))

    query = select(
        func.count(case((v.last_seen >= now - ONLINE_WINDOW, 1))).label("online_now"),
        since(today).label("today"),
        since(week).label("this_week"),
        since(month).label("this_month"),
        func.count().label("total"),
    ).select_from(visits)
    row = conn_or_store.execute(query).one()
    return {key: int(value or 0) for key, value in row._mapping.items()}
