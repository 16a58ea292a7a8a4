"""queue indexes: an agency's live dossiers and a lane's ready tasks, both in instance order (the task
queue and its counts become a merge join of two small indexes); an agency's dossiers newest first and by
status (dossier lists and their counts); an agency's dossiers by reception (indicators).  Measured with
bench/queue_scale.py at 1,000,000 dossiers.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

LIVE_PREDICATE = "status NOT IN (3, 7, 8, 10)"


def upgrade() -> None:
    op.drop_index("ix_ready_tasks_lane", table_name="ready_tasks")
    op.create_index(
        "ix_ready_tasks_lane_instance_id",
        "ready_tasks",
        ["lane", "instance_id"],
        unique=False,
        postgresql_include=["created_at", "id"],
    )
    op.create_index(
        "ix_dossiers_live",
        "dossiers",
        ["agency_code", "instance_id"],
        unique=False,
        postgresql_include=["due_at", "procedure_code", "status", "finished_at", "due_soon_at", "overdue_at"],
        postgresql_where=sa.text(LIVE_PREDICATE),
        sqlite_where=sa.text(LIVE_PREDICATE),
    )
    op.create_index(
        "ix_dossiers_live_due",
        "dossiers",
        ["agency_code", "due_at"],
        unique=False,
        postgresql_include=[
            "instance_id",
            "procedure_code",
            "status",
            "finished_at",
            "due_soon_at",
            "overdue_at",
        ],
        postgresql_where=sa.text(LIVE_PREDICATE),
        sqlite_where=sa.text(LIVE_PREDICATE),
    )
    op.create_index("ix_dossiers_agency_submitted", "dossiers", ["agency_code", "submitted_at", "code"])
    op.create_index(
        "ix_dossiers_agency_status_submitted", "dossiers", ["agency_code", "status", "submitted_at", "code"]
    )
    op.create_index("ix_dossiers_agency_received", "dossiers", ["agency_code", "received_at"])


def downgrade() -> None:
    for name in (
        "ix_dossiers_agency_received",
        "ix_dossiers_agency_status_submitted",
        "ix_dossiers_agency_submitted",
        "ix_dossiers_live_due",
        "ix_dossiers_live",
    ):
        op.drop_index(name, table_name="dossiers")
    op.drop_index("ix_ready_tasks_lane_instance_id", table_name="ready_tasks")
    op.create_index("ix_ready_tasks_lane", "ready_tasks", ["lane"], unique=False)
