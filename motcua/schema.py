"""Create or migrate the database schema with Alembic (``motcua db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def full_metadata() -> MetaData:
    """Return the metadata of every table of the application (engine, dossiers, payments, sandbox gateway)."""
    import accounts.tables  # noqa: F401 - registers the identity tables
    import dossiers.tables  # noqa: F401 - registers the dossier tables
    import payments.tables  # noqa: F401 - registers the payment tables
    import sandbox_gateway.tables  # noqa: F401 - registers the sandbox gateway's table
    from engine.tables import metadata

    return metadata


def alembic_config(url: str) -> Config:
    """Return an Alembic configuration pointing at our migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine``'s database to ``revision`` (the latest by default)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """Return the schema revision the database is at, or None when it has none."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
