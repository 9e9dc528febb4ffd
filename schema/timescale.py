"""TimescaleDB support, used only where the extension can work (it is optional).

BEMCOM_TIMESCALEDB=auto makes the history tables hypertables when the extension is installed
and preloaded; `off` keeps plain tables. An extension that is installed but not preloaded
cannot be created (`extension "timescaledb" must be preloaded`), so such a server migrates
with plain tables and a warning that says how to preload it.
"""

from __future__ import annotations

import structlog
from sqlalchemy import Connection, text

# The history tables grow without bound; chunks of a week keep each chunk's index in memory
# for a site of a few thousand datapoints.
CHUNK_INTERVAL = "7 days"
# The loader registers its settings only when PostgreSQL preloads it at start. pg_settings
# shows them to every role, unlike shared_preload_libraries (superusers only); a placeholder
# from postgresql.conf (timescaledb.telemetry_level = off) is not listed there.
_PRELOADED_SETTING = "timescaledb.max_background_workers"

log = structlog.get_logger("schema")


def timescale_available(connection: Connection) -> bool:
    """The extension's files are installed on the server (not necessarily loadable)."""
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).first()
    return found is not None


def timescale_preloaded(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(
        text("SELECT 1 FROM pg_settings WHERE name = :name"), {"name": _PRELOADED_SETTING}
    ).first()
    return found is not None


def timescale_installed(connection: Connection) -> bool:
    """The extension is created in this database."""
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(
        text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    ).first()
    return found is not None


def timescale_usable(connection: Connection) -> bool:
    """time_bucket and hypertables work here: created in the database and loaded."""
    return timescale_installed(connection) and timescale_preloaded(connection)


def use_hypertables(connection: Connection, mode: str) -> bool:
    """Whether a migration makes the history tables hypertables, for BEMCOM_TIMESCALEDB=mode.

    Logs why not when the extension is there but cannot be used."""
    if mode == "off" or not timescale_available(connection):
        return False
    if not timescale_preloaded(connection):
        log.warning(
            "timescaledb_not_preloaded",
            detail="the timescaledb extension is installed but not preloaded; "
            "migrating with plain tables (no hypertables)",
            fix="add timescaledb to shared_preload_libraries in postgresql.conf "
            "(shared_preload_libraries = 'timescaledb') and restart PostgreSQL; "
            "BEMCOM_TIMESCALEDB=off silences this",
        )
        return False
    return True


def hypertable_statements(table: str, time_column: str = "time") -> list[str]:
    """SQL that turns an existing history table into a hypertable, keeping its rows."""
    if not table.isidentifier() or not time_column.isidentifier():
        raise ValueError(f"not a plain identifier: {table}.{time_column}")
    return [
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        (
            f"SELECT create_hypertable('{table}', '{time_column}', "
            f"chunk_time_interval => INTERVAL '{CHUNK_INTERVAL}', "
            "migrate_data => true, if_not_exists => true)"
        ),
    ]
