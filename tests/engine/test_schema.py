"""The Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

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


def test_the_instance_state_is_compressed_with_lz4_on_postgresql(db_url):
    """Every unit of work rewrites the state: lz4 writes it about twice as fast as the default pglz."""
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name != "postgresql":
                return  # SQLite has no TOAST compression to choose
            lz4 = conn.execute(
                text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
            ).scalar()
            method = conn.execute(
                text(
                    "SELECT attcompression FROM pg_attribute WHERE attrelid = 'instances'::regclass "
                    "AND attname = 'state'"
                )
            ).scalar()
        assert method == ("l" if lz4 else "")
    finally:
        engine.dispose()
