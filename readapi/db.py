"""The database as readapi sees it: one SQLAlchemy engine, and the dialect's few differences.

Writes and metadata go through SQLAlchemy Core (portable, converts times). The hot reads
(message histories, last values) use the driver's cursor directly with SQL written for each
dialect, so ten thousand rows are not turned into SQLAlchemy rows first.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import Connection, Engine, create_engine, text

from schema.database import create_sqlalchemy_engine, sqlalchemy_url
from schema.limits import MAX_MS, MIN_MS
from schema.settings import Settings
from schema.tables import EPOCH, millis_to_datetime
from schema.timescale import timescale_usable

_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


class Database:
    """The engine plus what differs between PostgreSQL and SQLite."""

    def __init__(self, engine: Engine, timescale: bool = False) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.timescale = timescale

    def connect(self) -> Connection:
        return self.engine.connect()

    def begin(self):
        return self.engine.begin()

    def sql(self, statement: str) -> str:
        """SQL written with psycopg's %(name)s parameters, in the dialect's own style."""
        if self.postgres:
            return statement
        return _NAMED_PARAMETER.sub(r":\1", statement)

    def time_param(self, ms: int | float):
        """A ms timestamp as the driver binds it for the `time` column."""
        ms = min(max(ms, MIN_MS), MAX_MS)
        if self.postgres:
            return EPOCH + timedelta(milliseconds=ms)
        return ms

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(settings: Settings) -> Database:
    if settings.uses_postgres:
        engine = create_engine(
            sqlalchemy_url(settings),
            pool_size=max(4, settings.n_mtd_write_threads),
            max_overflow=8,
            pool_pre_ping=True,
            # A connection returned to the pool is rolled back anyway; this keeps idle
            # connections out of "idle in transaction".
            pool_reset_on_return="rollback",
        )
    else:
        engine = create_sqlalchemy_engine(settings)
    with engine.connect() as connection:
        # time_bucket only where the extension works; BEMCOM_TIMESCALEDB=off means date_bin.
        timescale = settings.timescaledb != "off" and timescale_usable(connection)
    return Database(engine, timescale)


__all__ = ["Database", "millis_to_datetime", "open_database"]
