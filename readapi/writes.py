"""Writing messages: bulk upserts (PUT), deletes, and storing what readapi publishes.

Rows are stored exactly as ingestd stores the same MQTT message, so a message reads back the
same whichever process wrote it. A last-* row is replaced only by a message that is not older.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, and_, delete, select

from readapi.db import Database
from schema.tables import HISTORY_TABLE
from schema.upserts import history_statement, last_statement
from schema.values import split_value

UPSERT_BATCH = 5000


def payload_columns(kind: str, text: str) -> dict:
    """The JSON text of a value/setpoint/schedule -> the columns it is stored in."""
    if kind == "value":
        value_num, value_raw = split_value(text)
        return {"value_num": value_num, "value_raw": value_raw}
    return {kind: text}


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
    table = HISTORY_TABLE[kind]
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
    statement = history_statement(database.engine.dialect.name, kind)
    for start in range(0, len(rows), UPSERT_BATCH):
        connection.execute(statement, rows[start : start + UPSERT_BATCH])
    newest = max(latest)
    upsert_last(connection, database, kind, datapoint_id, newest, latest[newest])
    return created, len(messages) - created


def upsert_last(
    connection: Connection, database: Database, kind: str, datapoint_id: int, ms: int, text: str
) -> None:
    # A late or replayed message must not replace a newer last message.
    connection.execute(
        last_statement(database.engine.dialect.name, kind),
        {"datapoint_id": datapoint_id, "time": ms, **payload_columns(kind, text)},
    )


def store_published(
    database: Database, kind: str, datapoint_id: int, ms: int, text: str, history: bool
) -> None:
    """Store a message readapi published, as ingestd will when it receives it back."""
    with database.begin() as connection:
        if history:
            connection.execute(
                history_statement(database.engine.dialect.name, kind),
                {"datapoint_id": datapoint_id, "time": ms, **payload_columns(kind, text)},
            )
        upsert_last(connection, database, kind, datapoint_id, ms, text)


def delete_message(database: Database, kind: str, datapoint_id: int, ms: int) -> bool:
    table = HISTORY_TABLE[kind]
    with database.begin() as connection:
        result = connection.execute(
            delete(table).where(and_(table.c.datapoint_id == datapoint_id, table.c.time == ms))
        )
        return result.rowcount > 0
