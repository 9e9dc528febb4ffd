"""Where the database is, and how each process connects to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event

from schema.settings import Settings

# Applied to every SQLite connection of either process: WAL lets readapi read while ingestd
# writes; busy_timeout makes two writers wait for each other instead of failing.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)


def sqlalchemy_url(settings: Settings) -> URL:
    if settings.uses_postgres:
        return URL.create(
            "postgresql+psycopg",
            username=settings.db_user,
            password=settings.db_password,
            host=settings.db_host,
            port=settings.db_port,
            database=settings.db_name,
        )
    return URL.create("sqlite+pysqlite", database=str(settings.sqlite_path))


def psycopg_conninfo(settings: Settings) -> str:
    """A libpq connection string, for the psycopg pool of ingestd and readapi."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=settings.db_password,
        dbname=settings.db_name,
        application_name="bemcom",
    )


def configure_sqlite_connection(connection: sqlite3.Connection) -> None:
    for pragma in SQLITE_PRAGMAS:
        connection.execute(pragma)


def connect_sqlite(settings: Settings) -> sqlite3.Connection:
    """A plain sqlite3 connection with the shared pragmas, in autocommit mode."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(
        settings.sqlite_path, isolation_level=None, check_same_thread=False, timeout=30
    )
    configure_sqlite_connection(connection)
    return connection


def create_sqlalchemy_engine(settings: Settings) -> Engine:
    if not settings.uses_postgres:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        engine = create_engine(sqlalchemy_url(settings), connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            configure_sqlite_connection(dbapi_connection)

        return engine
    return create_engine(sqlalchemy_url(settings), pool_pre_ping=True)
