"""Writing messages: bulk upserts (PUT), deletes, and storing what readapi publishes.

Rows are stored exactly as ingestd stores the same MQTT message, so a message reads back the
same whichever process wrote it. A last-* row is replaced only by a message that is not older.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Table, and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from readapi.db import Database
from schema.tables import (
    datapoint_last_schedule,
    datapoint_last_setpoint,
    datapoint_last_value,
    datapoint_schedule,
    datapoint_setpoint,
    datapoint_value,
)
from schema.values import split_value

HISTORY = {"value": datapoint_value, "setpoint": datapoint_setpoint, "schedule": datapoint_schedule}
LAST = {
    "value": datapoint_last_value,
    "setpoint": datapoint_last_setpoint,
    "schedule": datapoint_last_schedule,
}
UPSERT_BATCH = 5000


def payload_columns(kind: str, text: str) -> dict:
    """The JSON text of a value/setpoint/schedule -> the columns it is stored in."""
    if kind == "value":
        value_num, value_raw = split_value(text)
        return {"value_num": value_num, "value_raw": value_raw}
    return {kind: text}


def _insert(database: Database, table: Table):
    return (postgresql.insert if database.postgres else sqlite.insert)(table)


def upsert_history(
    connection: Connection,
    database: Database,
    kind: str,
    datapoint_id: int,
    messages: Sequence[tuple[int, str]],
) -> tuple[int, int]:
    """Insert or replace (timestamp, JSON text) messages; return (created, updated).

    Counted as the original counts: in order, a timestamp seen before (in the table or
    earlier in the same request) is an update.
    """
    table = HISTORY[kind]
    if not messages:
        return 0, 0
    timestamps = [ms for ms, _ in messages]
    existing = set(
        connection.execute(
            select(table.c.time).where(
                and_(
                    table.c.datapoint_id == datapoint_id,
                    table.c.time >= min(timestamps),
                    table.c.time <= max(timestamps),
                )
            )
        ).scalars()
    )
    created = 0
    latest: dict[int, str] = {}
    for ms, text in messages:
        if ms not in existing and ms not in latest:
            created += 1
        latest[ms] = text  # A repeat within the request: the last one wins.
    rows = [
        {"datapoint_id": datapoint_id, "time": ms, **payload_columns(kind, text)}
        for ms, text in latest.items()
    ]
    statement = _insert(database, table)
    payload = [c for c in rows[0] if c not in ("datapoint_id", "time")]
    statement = statement.on_conflict_do_update(
        index_elements=["datapoint_id", "time"],
        set_={c: statement.excluded[c] for c in payload},
    )
    for start in range(0, len(rows), UPSERT_BATCH):
        connection.execute(statement, rows[start : start + UPSERT_BATCH])
    newest = max(latest)
    upsert_last(connection, database, kind, datapoint_id, newest, latest[newest])
    return created, len(messages) - created


def upsert_last(
    connection: Connection, database: Database, kind: str, datapoint_id: int, ms: int, text: str
) -> None:
    table = LAST[kind]
    columns = payload_columns(kind, text)
    statement = _insert(database, table).values(datapoint_id=datapoint_id, time=ms, **columns)
    statement = statement.on_conflict_do_update(
        index_elements=["datapoint_id"],
        set_={"time": statement.excluded.time, **{c: statement.excluded[c] for c in columns}},
        # A late or replayed message must not replace a newer last message.
        where=table.c.time <= statement.excluded.time,
    )
    connection.execute(statement)


def store_published(
    database: Database, kind: str, datapoint_id: int, ms: int, text: str, history: bool
) -> None:
    """Store a message readapi published, as ingestd will when it receives it back."""
    with database.begin() as connection:
        if history:
            table = HISTORY[kind]
            statement = _insert(database, table).values(
                datapoint_id=datapoint_id, time=ms, **payload_columns(kind, text)
            )
            columns = payload_columns(kind, text)
            statement = statement.on_conflict_do_update(
                index_elements=["datapoint_id", "time"],
                set_={c: statement.excluded[c] for c in columns},
            )
            connection.execute(statement)
        upsert_last(connection, database, kind, datapoint_id, ms, text)


def delete_message(database: Database, kind: str, datapoint_id: int, ms: int) -> bool:
    table = HISTORY[kind]
    with database.begin() as connection:
        result = connection.execute(
            delete(table).where(and_(table.c.datapoint_id == datapoint_id, table.c.time == ms))
        )
        return result.rowcount > 0
