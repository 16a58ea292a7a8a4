"""dossier tasks: the open tasks of each dossier with its agency and lane (kept by the dossier tracker), so
that an official's queue count and per-lane counts read only the agency's own entries; an index of the
running dossiers flagged about to be late or late, for the overdue and due-soon counts.  Filled here from
the ready tasks of the dossiers that exist.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

FLAGGED_PREDICATE = "finished_at IS NULL AND (overdue_at IS NOT NULL OR due_soon_at IS NOT NULL)"


def upgrade() -> None:
    op.create_table(
        "dossier_tasks",
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("agency_code", sa.String(40), nullable=False),
        sa.Column("lane", sa.String(200)),
        sa.PrimaryKeyConstraint("task_id", name="pk_dossier_tasks"),
    )
    op.create_index("ix_dossier_tasks_instance_id", "dossier_tasks", ["instance_id"])
    op.create_index("ix_dossier_tasks_agency_lane", "dossier_tasks", ["agency_code", "lane"])
    op.create_index(
        "ix_dossiers_flagged",
        "dossiers",
        ["agency_code", "instance_id"],
        postgresql_include=["due_soon_at", "overdue_at", "status"],
        postgresql_where=sa.text(FLAGGED_PREDICATE),
        sqlite_where=sa.text(FLAGGED_PREDICATE),
    )
    op.execute(
        "INSERT INTO dossier_tasks (task_id, instance_id, agency_code, lane) "
        "SELECT r.id, r.instance_id, d.agency_code, r.lane "
        "FROM ready_tasks r JOIN dossiers d ON d.instance_id = r.instance_id"
    )


def downgrade() -> None:
    op.drop_index("ix_dossiers_flagged", table_name="dossiers")
    op.drop_index("ix_dossier_tasks_agency_lane", table_name="dossier_tasks")
    op.drop_index("ix_dossier_tasks_instance_id", table_name="dossier_tasks")
    op.drop_table("dossier_tasks")
