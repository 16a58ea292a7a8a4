"""Who is calling: bearer tokens for people, API keys for integrators; and who may do what.

The principal is resolved once per request (``before_request``); views declare what they need with
``require_roles`` or ``require_scope``, which raise the domain's 401/403 errors.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from accounts.service import Principal
from engine.errors import AuthenticationError, ForbiddenError

from . import context

F = TypeVar("F", bound=Callable[..., Any])


SESSION_COOKIE = "motcua_session"
CSRF_COOKIE = "motcua_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def load_principal() -> None:
    """Resolve the caller into ``g.principal``: an ``Authorization: Bearer`` or ``X-API-Key`` header, or the
    web pages' session cookie.

    The cookie (HttpOnly, set by ``POST /api/v1/auth/session``) carries the same kind of token as the bearer
    header. A request that changes something must also echo the readable ``motcua_csrf`` cookie in the
    ``X-CSRF-Token`` header (double submit): another site can make the browser send the cookie, but it cannot
    read it. Without that header the cookie is ignored, so the request is anonymous; so is a request whose
    session expired or was revoked.

    Raises:
        AuthenticationError: credentials were sent but are wrong, expired or revoked.
        ForbiddenError: the session cookie came with a CSRF header that does not match.
    """
    g.principal = None
    g.session_token = None
    accounts = context.accounts()
    header = request.headers.get("Authorization", "")
    api_key = request.headers.get("X-API-Key")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Use 'Authorization: Bearer <token>'")
        g.principal = accounts.authenticate_token(token.strip())
    elif api_key:
        g.principal = accounts.authenticate_api_key(api_key.strip())
    elif request.cookies.get(SESSION_COOKIE) and _csrf_passes():
        token = request.cookies[SESSION_COOKIE]
        try:
            g.principal = accounts.authenticate_token(token)
            g.session_token = token
        except AuthenticationError:
            # An expired or revoked session leaves public pages public; the pages notice and log in again.
            g.principal = None


def _csrf_passes() -> bool:
    """True for a safe method, or an unsafe one whose CSRF header matches the CSRF cookie."""
    if request.method in SAFE_METHODS:
        return True
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        return False
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ForbiddenError(f"The {CSRF_HEADER} header does not match this session: reload the page")
    return True


def principal() -> Principal:
    """Return the authenticated caller.

    Raises:
        AuthenticationError: nobody is logged in.
    """
    who = getattr(g, "principal", None)
    if who is None:
        raise AuthenticationError("Log in first: this needs a bearer token or an API key")
    return who


def optional_principal() -> Principal | None:
    """Return the caller if any credentials were sent."""
    return getattr(g, "principal", None)


def require_roles(*roles: str) -> Callable[[F], F]:
    """Allow a view only to callers holding one of ``roles`` (admins always pass)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            who = principal()
            if not who.has(*roles, "admin"):
                raise ForbiddenError(f"This needs the role {' or '.join(roles)}")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def require_scope(scope: str) -> Callable[[F], F]:
    """Allow a view to API keys with ``scope``, and to logged-in integrators and admins."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            who = principal()
            allowed = scope in who.scopes if who.via == "api_key" else who.has("integrator", "admin")
            if not allowed:
                raise ForbiddenError(f"This needs an integrator key with the scope '{scope}'")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
