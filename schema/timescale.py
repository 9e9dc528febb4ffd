"""TimescaleDB support, used only where the extension is installed (it is optional)."""

from __future__ import annotations

from sqlalchemy import Connection, text

# The history tables grow without bound; chunks of a week keep each chunk's index in memory
# for a site of a few thousand datapoints.
CHUNK_INTERVAL = "7 days"


def timescale_available(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).first()
    return found is not None


def timescale_installed(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(
        text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    ).first()
    return found is not None


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
