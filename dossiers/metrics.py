"""Operational metrics of the dossier domain, read at scrape time (served by ``/metrics``)."""

from __future__ import annotations

from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from .status import FINAL, Status
from .tables import dossiers, webhook_deliveries

# Statuses in which the agency still owes the applicant a result (``finished_at`` is still empty).
OPEN_STATUSES = tuple(int(s) for s in Status if s not in FINAL and s != Status.PROCESSED)


def dossier_metrics(conn: Connection, now: datetime) -> list[Metric]:
    """Open dossiers, those past their due date, and webhook deliveries still to send.

    Walks ``ix_dossiers_status`` (open statuses only) and ``ix_webhook_deliveries_due_at`` (only pending
    deliveries have a ``due_at``).
    """
    d = dossiers.c
    open_dossier = (d.status.in_(OPEN_STATUSES), d.finished_at.is_(None))
    count = func.count()
    open_count = conn.execute(select(count).where(*open_dossier)).scalar_one()
    overdue_count = conn.execute(select(count).where(*open_dossier, d.due_at < now)).scalar_one()
    pending_count = conn.execute(
        select(count).select_from(webhook_deliveries).where(webhook_deliveries.c.due_at.is_not(None))
    ).scalar_one()
    values = (
        ("motcua_dossiers_open", "Dossiers not finished yet (a result is still owed).", open_count),
        ("motcua_dossiers_overdue", "Open dossiers whose due time has passed.", overdue_count),
        (
            "motcua_webhook_deliveries_pending",
            "Webhook deliveries not delivered and not given up yet.",
            pending_count,
        ),
    )
    return [GaugeMetricFamily(name, text, value=value) for name, text, value in values]
