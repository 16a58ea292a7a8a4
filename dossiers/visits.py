"""The portal's visitor counter: online now, today, this week, this month, total, without personal data.

A visitor is a keyed hash of (IP address, User-Agent) under a secret that is random per local day and lives
only in memory (see ``DailySecret``).  When the day changes (midnight in Asia/Ho_Chi_Minh) the secret is
replaced and the old one forgotten, so a stored hash can no longer be recomputed from an IP and a User-Agent,
and the same person gets an unrelated hash the next day.  So "total" counts visitor-days, not people.

One row per (day, visitor); a visit is one upsert (``hits + 1``, ``last_seen``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from engine.store import Store

from .tables import visits

log = logging.getLogger(__name__)
VN = ZoneInfo("Asia/Ho_Chi_Minh")
ONLINE_WINDOW = timedelta(minutes=5)
SECRET_BYTES = 32
DAY_STAMP = re.compile(r"[0-9]{8}")
# tmpfs: memory the worker processes of one host share (in a 0700 folder of the user: see DailySecret)
SHARED_DIR = Path("/dev/shm")  # noqa: S108


def local_day(now: datetime) -> date:
    """Return the calendar day of ``now`` in Viet Nam."""
    return now.astimezone(VN).date()


class DailySecret:
    """A random secret per local day, held in memory only and replaced when the day changes.

    ``motcua serve`` runs several worker processes; a secret of each process's own would count one
    person once per worker reached.  So the workers share the day's secret through a file in ``shared_dir``,
    a RAM-backed tmpfs (``/dev/shm``), never the database or a disk, inside a folder only this user can
    enter: the first worker to need a day's secret draws it and publishes it atomically, the others read it,
    and publishing a new day deletes the files of earlier days.  Each process also keeps only the current
    day's secret.  Without a usable ``shared_dir`` (or on any error with it) the secret is the process's own:
    still anonymous, but a person is then counted once per process reached.  Thread-safe.
    """

    def __init__(self, shared_dir: Path | None = SHARED_DIR, *, name: str = "motcua-visits") -> None:
        self._lock = threading.Lock()
        self._day: date | None = None
        self._secret = b""
        self._dir = shared_dir
        self._name = name

    def of(self, day: date) -> bytes:
        """Return the secret of ``day``, rotating it if ``day`` is not the day currently held."""
        with self._lock:
            if day != self._day:
                self._secret = self._shared(day) or secrets.token_bytes(SECRET_BYTES)
                self._day = day
            return self._secret

    def visitor(self, day: date, ip: str, user_agent: str) -> str:
        """Return the 64-hex visitor id of (ip, user_agent) on ``day``: HMAC-SHA256 under the day's secret."""
        message = f"{ip}\x00{user_agent}".encode("utf-8", "surrogatepass")
        return hmac.new(self.of(day), message, hashlib.sha256).hexdigest()

    def _shared(self, day: date) -> bytes | None:
        """Return the workers' shared secret of ``day``, publishing one if there is none; None if unusable."""
        if self._dir is None or not self._dir.is_dir():
            return None
        stamp = f"{day:%Y%m%d}"
        try:
            folder = self._private_folder(self._dir)
            published = [p for p in folder.iterdir() if DAY_STAMP.fullmatch(p.name)]
            if any(p.name > stamp for p in published):
                return None  # a later day is already published: a late request must not resurrect its day
            secret = self._publish(folder / stamp)
            for path in published:
                if path.name < stamp:
                    path.unlink(missing_ok=True)
        except OSError:
            log.warning(
                "visitor secret: %s is unusable; this process keeps its own", self._dir, exc_info=True
            )
            return None
        return secret if len(secret) == SECRET_BYTES else None

    def _private_folder(self, shared_dir: Path) -> Path:
        """Return ``<shared_dir>/<name>-<uid>``, a folder only this user can enter (created if absent)."""
        folder = shared_dir / f"{self._name}-{os.getuid()}"
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise PermissionError(f"{folder} is not a private folder of this user")
        return folder

    @staticmethod
    def _publish(path: Path) -> bytes:
        """Write a fresh secret to ``path`` unless another process already did (atomic link); return it."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        secret = secrets.token_bytes(SECRET_BYTES)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secret)
        try:
            os.link(tmp, path)
        except FileExistsError:
            secret = path.read_bytes()
        finally:
            tmp.unlink(missing_ok=True)
        return secret


DAILY_SECRET = DailySecret()  # shared by the workers of this host; tests pass their own


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
