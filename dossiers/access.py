"""Who may see and act on which dossier: applicants their own, officials their agency's and their lane's.

Rules take any caller with ``username``, ``agency_code`` and ``has(*roles)`` (``accounts.service.Principal``).
A refusal to see reads as "not found", so that codes of other people's dossiers cannot be probed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from engine.errors import ForbiddenError, NotFoundError

OFFICIAL_LANES = ("reception", "specialist", "leader")


class Caller(Protocol):
    """The part of a principal the rules read."""

    @property
    def username(self) -> str: ...

    @property
    def agency_code(self) -> str | None: ...

    def has(self, *roles: str) -> bool: ...


def may_see(caller: Caller, dossier: Mapping[str, Any]) -> bool:
    """Return whether ``caller`` may see ``dossier``."""
    if caller.has("admin") or dossier["owner"] == caller.username:
        return True
    return caller.has(*OFFICIAL_LANES) and caller.agency_code == dossier["agency_code"]


def check_see(caller: Caller, dossier: Mapping[str, Any]) -> None:
    """Raise NotFoundError unless ``caller`` may see ``dossier``."""
    if not may_see(caller, dossier):
        raise NotFoundError(f"No dossier {dossier['code']}", dossier_code=dossier["code"])


def check_act(caller: Caller, dossier: Mapping[str, Any], lane: str | None) -> None:
    """Raise unless ``caller`` may complete a task of ``lane`` on ``dossier``.

    The applicant's lane is the owner's; an official lane needs that role in the dossier's agency.

    Raises:
        NotFoundError: the caller may not even see the dossier.
        ForbiddenError: the caller sees it but the task is someone else's to do.
    """
    check_see(caller, dossier)
    if lane == "applicant":
        if dossier["owner"] != caller.username:
            raise ForbiddenError("Only the applicant can do this task")
        return
    if not (
        caller.has(lane or "", "admin")
        and (caller.has("admin") or caller.agency_code == dossier["agency_code"])
    ):
        raise ForbiddenError(f"This task is for the '{lane}' lane of agency {dossier['agency_code']}")


def queue_filter(caller: Caller) -> dict[str, Any]:
    """Return the task-queue restriction of a caller: an official's agency and lanes, or own dossiers.

    Raises:
        ForbiddenError: the caller has no task queue (e.g. an analyst or integrator).
    """
    if caller.has("admin"):
        return {}
    lanes = [lane for lane in OFFICIAL_LANES if caller.has(lane)]
    if lanes:
        return {"agency_code": caller.agency_code, "lanes": lanes}
    if caller.has("applicant"):
        return {"owner": caller.username, "lanes": ["applicant"]}
    raise ForbiddenError("Only officials and applicants have task queues")
