"""The working calendar's admin table in the dossier service: extra days off and make-up working days.

A mixin of ``DossierService`` (``dossiers/service.py``).  The calendar itself (public holidays plus these
declarations) is ``dossiers/calendar.py``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.errors import NotFoundError, ValidationError
from engine.facade import Engine

from . import store
from .calendar import ANNOUNCED_OVERRIDES
from .catalogue_schemas import nfc


class CalendarAdmin:
    """Declaring calendar days; ``DossierService`` is built on it and provides ``engine``."""

    engine: Engine

    def calendar_days(self) -> list[dict[str, Any]]:
        """Return the extra days off and make-up working days, in date order."""
        with self.engine.store.unit_of_work(write=False) as uow:
            return store.calendar_days_list(uow.conn)

    def set_calendar_day(self, day: date, *, working: bool, note: str, actor: str) -> dict[str, Any]:
        """Declare ``day`` a day off or a make-up working day (replacing an earlier declaration).

        Raises:
            ValidationError: no note saying which announcement it follows.
        """
        if not note or not note.strip():
            raise ValidationError("Say which announcement the day follows", {"note": ["required"]})
        values = {
            "day": day,
            "working": working,
            "note": nfc(note.strip()),
            "created_by": actor,
            "created_at": self.engine.now(),
        }
        with self.engine.store.unit_of_work() as uow:
            store.set_calendar_day(uow.conn, values)
        return values

    def unset_calendar_day(self, day: date) -> None:
        """Remove the declaration of a day.

        Raises:
            NotFoundError: the day has no declaration.
        """
        with self.engine.store.unit_of_work() as uow:
            if not store.delete_calendar_day(uow.conn, day):
                raise NotFoundError(f"{day.isoformat()} has no declaration", day=day.isoformat())

    def seed_calendar(self, actor: str = "seed") -> int:
        """Add the announced day swaps the holidays package lacks, unless an admin already declared them."""
        now = self.engine.now()
        rows = [(day, False) for day in ANNOUNCED_OVERRIDES.days_off]
        rows += [(day, True) for day in ANNOUNCED_OVERRIDES.working_days]
        with self.engine.store.unit_of_work() as uow:
            added = [
                store.add_calendar_day_if_absent(
                    uow.conn,
                    {
                        "day": day,
                        "working": working,
                        "created_by": actor,
                        "created_at": now,
                        "note": "Hoán đổi ngày làm việc dịp Tết Dương lịch 2026 (12729/VPCP-KGVX)",
                    },
                )
                for day, working in sorted(rows)
            ]
        return sum(added)
