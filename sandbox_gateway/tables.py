"""The sandbox gateway's own bookkeeping: the transactions it was asked to take, as a bank would keep them."""

from __future__ import annotations

from sqlalchemy import Column, Numeric, String, Table, Text, UniqueConstraint

from engine.tables import BigId, UTCDateTime, metadata

sandbox_transactions = Table(
    "sandbox_transactions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tmn_code", String(20), nullable=False),
    Column("txn_ref", String(64), nullable=False),
    Column("amount", Numeric(16, 0), nullable=False),  # as sent: VND x 100
    Column("order_info", Text, nullable=False),
    Column("return_url", Text, nullable=False),
    Column("ip_addr", String(64), nullable=False),
    Column("create_date", String(14), nullable=False),
    Column("expire_date", String(14)),
    Column("status", String(12), nullable=False),  # pending | paid | failed
    Column("response_code", String(4)),
    Column("transaction_no", String(20), unique=True),
    Column("bank_code", String(20)),
    Column("pay_date", String(14)),
    Column("ipn_rsp_code", String(4)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tmn_code", "txn_ref", name="uq_sandbox_transactions_tmn_code_txn_ref"),
)
