"""definition drafts: the analysts' unfinished BPMN, one per process key and analyst, kept until deployed

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 10:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "definition_drafts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("xml", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_definition_drafts")),
        sa.UniqueConstraint("key", "owner", name=op.f("uq_definition_drafts_key_owner")),
    )
    with op.batch_alter_table("definition_drafts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_definition_drafts_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("definition_drafts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_definition_drafts_owner"))
    op.drop_table("definition_drafts")
