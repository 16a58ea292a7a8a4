"""The rules of the identity domain: roles, scopes, who the caller is, and what a valid user or key is.

Pure code with no database, shared by the service and the API edge.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.errors import ValidationError

ROLES = frozenset({"applicant", "reception", "specialist", "leader", "analyst", "admin", "integrator"})
OFFICIAL_ROLES = frozenset({"reception", "specialist", "leader"})
KEY_HOLDER_ROLES = frozenset({"integrator", "admin"})
SCOPES = frozenset({"processes:start", "messages:send", "webhooks:manage"})
API_KEY_PREFIX = "mc_"
DEMO_AGENCY = "000.01.01.H26"
MIN_PASSWORD, MAX_PASSWORD = 10, 1024

_USERNAME = re.compile(r"[a-z0-9._-]{3,64}")
_AGENCY = re.compile(r"[0-9A-Za-z.]{1,40}")
DEMO_USERS = (
    ("demo.applicant", "applicant", "Nguyễn Văn An"),
    ("demo.reception", "reception", "Trần Thị Bình"),
    ("demo.specialist", "specialist", "Lê Văn Cường"),
    ("demo.leader", "leader", "Phạm Thị Dung"),
    ("demo.analyst", "analyst", "Hoàng Văn Em"),
    ("demo.admin", "admin", "Vũ Thị Giang"),
    ("demo.integrator", "integrator", "Đặng Văn Hùng"),
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user authenticated by a bearer token or an API key."""

    user_id: int
    username: str
    full_name: str
    roles: frozenset[str]
    agency_code: str | None
    via: str  # "token" | "api_key"
    scopes: frozenset[str] = frozenset()  # API keys only

    def has(self, *roles: str) -> bool:
        """Return whether the caller holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)


def normalize_username(username: str) -> str:
    """Return the canonical form of a username: NFC, trimmed, lower-cased."""
    return unicodedata.normalize("NFC", username).strip().lower()


# -- validation -------------------------------------------------------------------------
def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC (Vietnamese typed on some keyboards arrives decomposed)."""
    return unicodedata.normalize("NFC", text)


def sha256_hex(secret: str) -> str:
    """Return the SHA-256 hex digest of a token or key, the form in which it is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _as_set(values: Iterable[str]) -> frozenset[str]:
    # A lone string is one value, not a sequence of characters.
    return frozenset([values] if isinstance(values, str) else values)


def validated_user(
    username: str, password: str, roles: Iterable[str], full_name: str, agency_code: str | None
) -> dict[str, Any]:
    """Return the normalised columns of a new user, or raise ValidationError naming every bad field."""
    name, role_set = normalize_username(username), _as_set(roles)
    display, agency = nfc(full_name).strip(), (agency_code or "").strip() or None
    errors: dict[str, list[str]] = {}
    if not _USERNAME.fullmatch(name):
        errors["username"] = ["3 to 64 characters among a-z, 0-9, '.', '_' and '-'"]
    password = nfc(password)
    problems = [
        message
        for bad, message in (
            (len(password) < MIN_PASSWORD, f"at least {MIN_PASSWORD} characters"),
            (len(password) > MAX_PASSWORD, f"at most {MAX_PASSWORD} characters"),
            (password.isdigit(), "not only digits"),
        )
        if bad
    ]
    if problems:
        errors["password"] = problems
    if not role_set or not role_set <= ROLES:
        unknown = ", ".join(sorted(role_set - ROLES)) or "none given"
        errors["roles"] = [f"one or more of {', '.join(sorted(ROLES))} (unknown: {unknown})"]
    if not display or len(display) > 200:
        errors["full_name"] = ["1 to 200 characters"]
    if agency is not None and not _AGENCY.fullmatch(agency):
        errors["agency_code"] = ["letters, digits and dots, at most 40 (e.g. 000.01.01.H26)"]
    elif agency is None and role_set & OFFICIAL_ROLES:
        errors["agency_code"] = ["required for reception, specialist and leader accounts"]
    if errors:
        raise ValidationError("The user is not valid", errors)
    roles_text = ",".join(sorted(role_set))
    return {"username": name, "full_name": display, "roles": roles_text, "agency_code": agency}


def validated_key(name: str, scopes: Iterable[str]) -> tuple[str, frozenset[str]]:
    """Return the normalised name and scopes of a new API key, or raise ValidationError naming bad fields."""
    label, scope_set = nfc(name).strip(), _as_set(scopes)
    errors: dict[str, list[str]] = {}
    if not label or len(label) > 100:
        errors["name"] = ["1 to 100 characters"]
    if not scope_set or not scope_set <= SCOPES:
        unknown = ", ".join(sorted(scope_set - SCOPES)) or "none given"
        errors["scopes"] = [f"one or more of {', '.join(sorted(SCOPES))} (unknown: {unknown})"]
    if errors:
        raise ValidationError("The API key is not valid", errors)
    return label, scope_set
