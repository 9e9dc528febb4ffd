"""Bring a database to the newest schema; both processes call this at start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every process that migrates.
MIGRATION_LOCK_KEY = 0x42454D43


def alembic_config(connection: Connection, timescaledb: str = "auto") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    # Read by the migrations that create history tables (schema.timescale.use_hypertables).
    config.attributes["timescaledb"] = timescaledb
    return config


def migrate(engine: Engine, revision: str = "head", *, timescaledb: str = "auto") -> None:
    """Upgrade to `revision`. On PostgreSQL an advisory lock makes concurrent starts wait.

    `timescaledb` is the BEMCOM_TIMESCALEDB setting (auto or off)."""
    with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
        try:
            command.upgrade(alembic_config(connection, timescaledb), revision)
            connection.commit()
        finally:
            if postgres:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
