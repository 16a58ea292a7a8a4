"""Tables of online payments: one row per payment attempt, every notification received, and e-receipts."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, Numeric, String, Table, Text

from engine.tables import BigId, UTCDateTime, metadata

# One attempt to pay a dossier's fees at a provider (a new attempt after a failure gets a new txn_ref).
payments = Table(
    "payments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("txn_ref", String(64), nullable=False, unique=True),
    Column("dossier_code", String(64), ForeignKey("dossiers.code"), nullable=False, index=True),
    Column("provider", String(20), nullable=False),
    Column("amount", Numeric(14, 0), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("lines", Text, nullable=False),  # JSON: the fee lines (and postage) the amount is made of
    Column("status", String(12), nullable=False),  # pending | paid | failed | expired
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("settled_at", UTCDateTime),
    Column("settled_by", String(20)),  # ipn | reconcile
    Column("response_code", String(4)),
    Column("transaction_no", String(40)),
    Column("bank_code", String(20)),
    Column("paid_at", UTCDateTime),
    Column("process_advanced", Boolean, nullable=False, default=False),
    Column("payment_url", Text),  # the signed redirect, given again while the attempt is pending
    Column("note", Text),  # e.g. paid after the process stopped waiting: the money is to be refunded
    Index("ix_payments_status_expires_at", "status", "expires_at"),
)

# Every notification (IPN) received, whatever its fate, with the answer given.
payment_notifications = Table(
    "payment_notifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("provider", String(20), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("txn_ref", String(64), index=True),
    Column("params", Text, nullable=False),
    Column("rsp_code", String(4), nullable=False),
    Column("outcome", String(100), nullable=False),
)

# The electronic receipt of a paid attempt.
receipts = Table(
    "receipts",
    metadata,
    Column("number", String(40), primary_key=True),
    Column("payment_id", BigId, ForeignKey("payments.id"), nullable=False, unique=True),
    Column("dossier_code", String(64), ForeignKey("dossiers.code"), nullable=False, index=True),
    Column("amount", Numeric(14, 0), nullable=False),
    Column("lines", Text, nullable=False),
    Column("payer", Text, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
)

# The last e-receipt number issued per year (BL-<yyyy>-<nnnnnnn>), taken in the settling transaction: gapless.
receipt_counters = Table(
    "receipt_counters",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last", Integer, nullable=False),
)
