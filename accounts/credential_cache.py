"""Credentials checked a moment ago, remembered for a few seconds in the process that checked them.

An official's task page is three requests (the task, the claim, the completion) with the same bearer token;
checking the token in the database for each cost a query and a connection checkout per request, about a tenth
of the server's CPU on the task page.  A credential found valid is remembered here, by the SHA-256 of the
secret, for ``seconds`` of the process's monotonic clock.  What that costs, bounded by ``seconds``:

* a token revoked (log out) or a user disabled through this process is forgotten here at once; through another
  process (another server worker, ``motcua users disable``) it stops working there within ``seconds``;
* a token's own expiry is still checked on every request, against the remembered expiry time;
* ``last_used_at`` is rewritten from the database checks only (it is kept to the minute anyway).

``seconds = 0`` turns the cache off: every request checks its credential in the database.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .rules import Principal


class CredentialCache:
    """Principals by credential hash, each for ``seconds`` after it was checked (at most ``size`` kept)."""

    def __init__(
        self, seconds: float, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        # hash -> (principal, expiry of the credential or None, when it was checked)
        self._entries: OrderedDict[str, tuple[Principal, datetime | None, float]] = OrderedDict()

    def get(self, digest: str) -> tuple[Principal, datetime | None] | None:
        """The principal and expiry remembered for a credential hash, if checked less than ``seconds`` ago."""
        if self.seconds <= 0:
            return None
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, expires_at, checked = entry
        if self._clock() - checked >= self.seconds:
            with self._lock:
                if self._entries.get(digest) is entry:
                    del self._entries[digest]
            return None
        return principal, expires_at

    def put(self, digest: str, principal: Principal, expires_at: datetime | None) -> None:
        """Remember a credential just found valid in the database."""
        if self.seconds <= 0:
            return
        with self._lock:
            self._entries[digest] = (principal, expires_at, self._clock())
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, digest: str) -> None:
        """Forget one credential (it was revoked here)."""
        with self._lock:
            self._entries.pop(digest, None)

    def forget_user(self, user_id: int) -> None:
        """Forget every credential of a user (disabled here)."""
        with self._lock:
            for digest in [d for d, (who, _e, _t) in self._entries.items() if who.user_id == user_id]:
                del self._entries[digest]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, digest: Any) -> bool:
        return digest in self._entries
