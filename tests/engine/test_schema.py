"""The Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine.store import create_db_engine
from motcua.schema import current_revision, full_metadata, upgrade


def test_migrated_schema_matches_the_tables(db_url):
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), full_metadata()
            )
        assert diff == []
        assert current_revision(engine) is not None
        upgrade(engine)  # running it again is a no-op
    finally:
        engine.dispose()
