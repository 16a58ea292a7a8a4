"""open incidents: a partial index, so that counting and listing them does not read the resolved ones

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 09:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_incidents_open",
        "incidents",
        ["id"],
        unique=False,
        postgresql_where=sa.text("resolved_at IS NULL"),
        sqlite_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_open", table_name="incidents")
