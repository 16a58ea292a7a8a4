"""Alembic environment: runs the engine's schema migrations on the connection or URL it is given."""

from alembic import context
from sqlalchemy import create_engine

from motcua.schema import full_metadata

config = context.config


def run_migrations() -> None:
    """Run migrations online, on a connection passed in ``config.attributes`` or a new one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)


def _run(connection) -> None:
    context.configure(
        connection=connection, target_metadata=full_metadata(), render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
