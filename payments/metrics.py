"""Operational metrics of online payments, read at scrape time (served by ``/metrics``)."""

from __future__ import annotations

from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from .tables import payments


def payment_metrics(conn: Connection, now: datetime) -> list[Metric]:
    """Pending payment attempts, and those past their expiry that reconciliation has not settled yet.

    Both walk the ``status = 'pending'`` range of ``ix_payments_status_expires_at``.
    """
    p = payments.c
    pending = conn.execute(select(func.count()).where(p.status == "pending")).scalar_one()
    overdue = conn.execute(select(func.count()).where(p.status == "pending", p.expires_at < now)).scalar_one()
    return [
        GaugeMetricFamily(
            "motcua_payments_pending", "Payment attempts waiting for the bank's answer.", value=pending
        ),
        GaugeMetricFamily(
            "motcua_payments_pending_expired",
            "Pending payment attempts past their expiry, not yet settled by reconciliation.",
            value=overdue,
        ),
    ]
