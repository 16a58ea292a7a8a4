"""motcua_written(), motcua_claim_free(): checks that let a unit of work queue its writes with its COMMIT.

A unit of work writes its instance row only if nobody wrote it since it was read
(``UPDATE ... WHERE row_version = <read>``).  On PostgreSQL the unit's writes and its COMMIT travel in one
pipeline (``engine/store.py``), so the check cannot wait for the update's row count: the update runs as
``WITH written AS (UPDATE ... RETURNING 1) SELECT motcua_written(count(*), <instance id>) FROM written``,
and this function fails the statement, and with it the transaction, unless exactly one row was written.
Its SQLSTATE is ``serialization_failure`` (40001), like any lost race between two writers.  SQLite runs
the update alone and checks the row count (writers there hold the database lock).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 17:00:00
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_CREATE = """
CREATE OR REPLACE FUNCTION motcua_written(written_rows bigint, instance_id text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF written_rows <> 1 THEN
        RAISE EXCEPTION 'motcua: instance % was changed by another writer', instance_id
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN written_rows;
END
$$
"""


# The same idea for a task's claim: a completion that starts from its cached instance checks in the server
# that nobody else holds the task (``HotSQL.release_claim_of``).
_CREATE_CLAIM_CHECK = """
CREATE OR REPLACE FUNCTION motcua_claim_free(holder text, actor text, task_id text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF holder <> actor THEN
        RAISE EXCEPTION 'motcua: task % is claimed by %', task_id, holder
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN true;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)
        op.execute(_CREATE_CLAIM_CHECK)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS motcua_claim_free(text, text, text)")
        op.execute("DROP FUNCTION IF EXISTS motcua_written(bigint, text)")
