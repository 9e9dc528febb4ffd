"""Where the database is, and how each process connects to it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path

import structlog
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


def _narrow(path: Path, mode: int) -> None:
    """Take group and other permissions away from `path` (owner bits beyond `mode` too)."""
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        try:
            path.chmod(current & mode)
        except PermissionError:
            # Not ours (a volume mounted by another user): say so instead of refusing to run.
            structlog.get_logger("schema").warning(
                "sqlite_mode_not_narrowed", path=str(path), mode=oct(current), wanted=oct(mode)
            )
            return
        structlog.get_logger("schema").warning(
            "sqlite_mode_narrowed", path=str(path), was=oct(current), now=oct(current & mode)
        )


def prepare_sqlite_location(settings: Settings) -> None:
    """Create the data directory (0700) and the SQLite file (0600), narrowing older modes.

    The file holds the password hashes and the generated session-signing key: whoever can
    read it can forge an admin session. SQLite gives its -wal and -shm files the database
    file's mode, so they follow.
    """
    directory = Path(settings.data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _narrow(directory, 0o700)
    path = settings.sqlite_path
    # O_CREAT with 0600 before SQLite opens it: SQLite itself would create it 0644. Only when
    # it is missing: closing any descriptor of the file drops every POSIX lock this process
    # holds on it, so opening an existing database here would release the locks of its open
    # connections, and another process's checkpoint then fails them with "disk I/O error".
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if companion.exists():
            _narrow(companion, 0o600)


def configure_sqlite_connection(connection: sqlite3.Connection) -> None:
    for pragma in SQLITE_PRAGMAS:
        connection.execute(pragma)


def connect_sqlite(settings: Settings) -> sqlite3.Connection:
    """A plain sqlite3 connection with the shared pragmas, in autocommit mode."""
    prepare_sqlite_location(settings)
    connection = sqlite3.connect(
        settings.sqlite_path, isolation_level=None, check_same_thread=False, timeout=30
    )
    configure_sqlite_connection(connection)
    return connection


def create_sqlalchemy_engine(settings: Settings) -> Engine:
    if not settings.uses_postgres:
        prepare_sqlite_location(settings)
        engine = create_engine(sqlalchemy_url(settings), connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            configure_sqlite_connection(dbapi_connection)

        return engine
    return create_engine(sqlalchemy_url(settings), pool_pre_ping=True)
