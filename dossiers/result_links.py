"""Expiring signed links to download a dossier's electronic result (HMAC-SHA256).

A link names the dossier, the applicant it was issued to and its expiry, signed with ``MOTCUA_LINK_SECRET``:
``<public url>/api/v1/results/<code>?u=<username>&exp=<unix seconds>&sig=<hex HMAC-SHA256>``.  Whoever holds
a valid link may download within its validity (15 minutes); a changed code, user or expiry breaks the
signature.  Without a secret no link is issued or accepted.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from engine.errors import ForbiddenError

VALIDITY = timedelta(minutes=15)
PATH = "/api/v1/results/"


class LinksNotConfigured(Exception):
    """No link secret is configured: links can be neither issued nor checked."""


def _message(code: str, username: str, expires: int) -> bytes:
    return f"motcua-result\n{code}\n{username}\n{expires}".encode()


@dataclass(frozen=True)
class ResultLinks:
    """Issues and checks result links.

    Args:
        secret: the HMAC key (``Settings.link_secret``); None: refuse (``LinksNotConfigured``).
        public_url: where the API is reached from outside, without a trailing slash.
        validity: how long a link works.
    """

    secret: str | None
    public_url: str
    validity: timedelta = VALIDITY

    def _key(self) -> bytes:
        if not self.secret:
            raise LinksNotConfigured("Result links need MOTCUA_LINK_SECRET to be set")
        return self.secret.encode()

    def signature(self, code: str, username: str, expires: int) -> str:
        """Return the hex HMAC-SHA256 of a link (raises ``LinksNotConfigured``)."""
        return hmac.new(self._key(), _message(code, username, expires), hashlib.sha256).hexdigest()

    def issue(self, code: str, username: str, now: datetime) -> dict[str, Any]:
        """Return ``{"url", "expires_at"}`` of a link for ``username`` to download the result of ``code``."""
        expires = int((now + self.validity).timestamp())
        query = urlencode({"u": username, "exp": expires, "sig": self.signature(code, username, expires)})
        return {
            "url": f"{self.public_url}{PATH}{quote(code, safe='')}?{query}",
            "expires_at": datetime.fromtimestamp(expires, UTC),
        }

    def verify(
        self, code: str, username: str | None, expires: str | None, sig: str | None, now: datetime
    ) -> str:
        """Check a link and return the username it was issued to.

        Raises:
            LinksNotConfigured: no secret.
            ForbiddenError: a part is missing, the signature does not match, or the link has expired.
        """
        if not username or not expires or not sig or not expires.isdigit() or len(expires) > 12:
            raise ForbiddenError("This result link is not valid")
        if now.timestamp() >= int(expires):
            raise ForbiddenError("This result link has expired; ask for a new one")
        if not hmac.compare_digest(self.signature(code, username, int(expires)), sig.lower()):
            raise ForbiddenError("This result link is not valid")
        return username
