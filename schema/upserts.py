"""The one rule for storing a message, as SQL for every writer (ingestd's two stores, readapi).

A message goes into its kind's history table, replacing one at the same time, and into the
last-row table, where it replaces the row only if it is not older: a late or replayed message
must not hide a newer one ("the last row only moves forward").

ingestd writes text SQL over its own row sources (PostgreSQL: a staging table filled by
COPY; SQLite: positional parameters); readapi writes SQLAlchemy statements for its dialect.
Both are built here from the same columns and the same condition.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import Insert

from schema.tables import HISTORY_TABLE, LAST_TABLE
from schema.topics import SCHEDULE, SETPOINT, VALUE

# The columns a message's payload is stored in, after (datapoint_id, time).
PAYLOAD_COLUMNS = {
    VALUE: ("value_num", "value_raw"),
    SETPOINT: ("setpoint",),
    SCHEDULE: ("schedule",),
}


def _set(columns: tuple[str, ...]) -> str:
    return ", ".join(f"{c} = excluded.{c}" for c in columns)


def history_sql(kind: str, rows: str) -> str:
    """Insert-or-replace into the history table; `rows` is a SELECT giving datapoint_id, time
    and the payload columns, in that order."""
    table, columns = HISTORY_TABLE[kind].name, PAYLOAD_COLUMNS[kind]
    return (
        f"INSERT INTO {table} (datapoint_id, time, {', '.join(columns)})\n{rows}\n"
        f"ON CONFLICT (datapoint_id, time) DO UPDATE SET {_set(columns)}"
    )


def last_sql(kind: str, rows: str) -> str:
    """Upsert into the last-row table, replacing only a row that is not newer; `rows` as for
    history_sql, at most one per datapoint."""
    table, columns = LAST_TABLE[kind].name, PAYLOAD_COLUMNS[kind]
    return (
        f"INSERT INTO {table} (datapoint_id, time, {', '.join(columns)})\n{rows}\n"
        f"ON CONFLICT (datapoint_id) DO UPDATE SET {_set(('time', *columns))}\n"
        f"WHERE {table}.time <= excluded.time"
    )


def _insert(dialect: str, table: Table) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)  # type: ignore[return-value]
    raise ValueError(f"no upsert for the dialect {dialect!r}")


def history_statement(dialect: str, kind: str) -> Insert:
    """history_sql as a SQLAlchemy statement, executed with rows of
    {datapoint_id, time, payload columns...}."""
    statement = _insert(dialect, HISTORY_TABLE[kind])
    return statement.on_conflict_do_update(
        index_elements=["datapoint_id", "time"],
        set_={c: statement.excluded[c] for c in PAYLOAD_COLUMNS[kind]},
    )


def last_statement(dialect: str, kind: str) -> Insert:
    """last_sql as a SQLAlchemy statement, executed with rows as for history_statement."""
    table = LAST_TABLE[kind]
    statement = _insert(dialect, table)
    return statement.on_conflict_do_update(
        index_elements=["datapoint_id"],
        set_={c: statement.excluded[c] for c in ("time", *PAYLOAD_COLUMNS[kind])},
        where=table.c.time <= statement.excluded.time,
    )


__all__ = ["PAYLOAD_COLUMNS", "history_sql", "history_statement", "last_sql", "last_statement"]
