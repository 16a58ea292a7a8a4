"""scheduler: timer leases, job runs, dossier deadline marks

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 07:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_timers_kind_due_at", ["kind", "due_at"], unique=False)

    op.create_table(
        "job_runs",
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("job", sa.String(length=50), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_duration_ms", sa.Float(), nullable=True),
        sa.Column("last_items", sa.Integer(), nullable=True),
        sa.Column("last_lag_ms", sa.Float(), nullable=True),
        sa.Column("max_lag_ms", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("worker", "job", name=op.f("pk_job_runs")),
    )

    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_soon_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_dossiers_open_due",
        "dossiers",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("finished_at IS NULL"),
        sqlite_where=sa.text("finished_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_dossiers_open_due", table_name="dossiers")
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.drop_column("overdue_at")
        batch_op.drop_column("due_soon_at")
    op.drop_table("job_runs")
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.drop_index("ix_timers_kind_due_at")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
