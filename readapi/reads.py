"""Reading messages: histories streamed from a server-side cursor, last messages, buckets."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import msgspec

from readapi import render
from readapi.db import Database
from readapi.filters import Bucketing, TimeRange
from readapi.models import ValueOut
from readapi.sql import BUCKET_ORIGIN_MS, bucketed_history_sql, history_sql, last_sql
from schema.values import answer_value

# Rows fetched per round trip; a chunk of this many rows is also one piece of the response.
# A history up to this size is answered whole, with a Content-Length; a longer one streams.
CHUNK_ROWS = 20_000
_cursor_names = itertools.count()


class HistoryReader:
    """An open query of one datapoint's history, read chunk by chunk.

    On PostgreSQL it is a server-side cursor (DECLARE/FETCH), so a million rows never sit
    in this process at once; SQLite's cursor steps through the table the same way.
    The caller must exhaust `chunks()` or call `close()`.
    """

    def __init__(self, database: Database, statement: str, params: dict) -> None:
        self.database = database
        self.connection = database.connect()
        try:
            raw = self.connection.connection.driver_connection
            if database.postgres:
                self.cursor = raw.cursor(name=f"readapi_history_{next(_cursor_names)}", binary=True)
                self.cursor.itersize = CHUNK_ROWS
            else:
                self.cursor = raw.cursor()
            self.cursor.execute(database.sql(statement), params)
        except BaseException:
            self.connection.close()
            raise
        self.closed = False

    def fetch(self) -> list:
        return self.cursor.fetchmany(CHUNK_ROWS)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.cursor.close()
        finally:
            self.connection.close()


def _bind_times(database: Database, params: dict) -> dict:
    return {k: database.time_param(v) if k.startswith("t_") else v for k, v in params.items()}


def open_history(
    database: Database, kind: str, datapoint_id: int, time_range: TimeRange
) -> HistoryReader:
    statement, params = history_sql(database.postgres, kind, time_range)
    params = _bind_times(database, params)
    params["dp"] = datapoint_id
    return HistoryReader(database, statement, params)


def small_history(
    database: Database, kind: str, datapoint_id: int, time_range: TimeRange, exact: bool
) -> tuple[bool, bytes | None]:
    """(datapoint exists, the whole answer if it has at most CHUNK_ROWS rows) - PostgreSQL.

    A plain query with a LIMIT is one round trip, where a server-side cursor takes four
    (DECLARE, FETCH, CLOSE, COMMIT); only longer histories pay for streaming.
    """
    statement, params = history_sql(database.postgres, kind, time_range, limited=True)
    params = _bind_times(database, params)
    params["dp"] = datapoint_id
    params["limit"] = CHUNK_ROWS + 1
    with database.connect() as connection:
        # Binary results: bigint and float8 arrive without text parsing.
        cursor = connection.connection.driver_connection.cursor(binary=True)
        try:
            cursor.execute(statement, params)
            rows = cursor.fetchall()
            # Only an empty history needs the second look: is there such a datapoint?
            if not rows:
                cursor.execute("SELECT 1 FROM datapoint WHERE id = %(dp)s", params)
                if cursor.fetchone() is None:
                    return False, None
        finally:
            cursor.close()
    if len(rows) > CHUNK_ROWS:
        return True, None
    return True, b"[" + encode_chunk(kind, rows, exact) + b"]"


def encode_chunk(kind: str, rows: list, exact: bool) -> bytes:
    """A chunk of rows as JSON array elements, without the brackets."""
    if kind == "value":
        return render.encode_value_rows(rows, exact)[1:-1]
    return render.encode_message_rows(kind, rows, exact)[1:-1]


def first_chunk_or_stream(
    reader: HistoryReader, kind: str, exact: bool
) -> tuple[bytes | None, Iterator[bytes]]:
    """Read the first chunk now. If that was everything, return the whole body (and the
    response gets a Content-Length); otherwise an iterator that streams the rest."""
    try:
        rows = reader.fetch()
        if len(rows) < CHUNK_ROWS:
            reader.close()
            return b"[" + encode_chunk(kind, rows, exact) + b"]", iter(())
    except BaseException:
        reader.close()
        raise
    return None, _stream(reader, kind, encode_chunk(kind, rows, exact), exact)


def _stream(reader: HistoryReader, kind: str, first: bytes, exact: bool) -> Iterator[bytes]:
    try:
        yield b"[" + first
        while True:
            rows = reader.fetch()
            if not rows:
                break
            yield b"," + encode_chunk(kind, rows, exact)
        yield b"]"
    finally:
        reader.close()


def bucketed_values(
    database: Database,
    datapoint_id: int,
    time_range: TimeRange,
    bucketing: Bucketing,
    exact: bool,
) -> bytes:
    statement, params = bucketed_history_sql(
        database.postgres, database.timescale, time_range, bucketing
    )
    params = _bind_times(database, params)
    params["dp"] = datapoint_id
    if database.postgres:
        params["width"] = timedelta(milliseconds=bucketing.width_ms)
        params["origin"] = database.time_param(BUCKET_ORIGIN_MS)
    else:
        params["width"] = bucketing.width_ms
        params["origin"] = BUCKET_ORIGIN_MS
    with database.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(database.sql(statement), params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
    if bucketing.agg in ("first", "last"):
        return render.encode_value_rows(rows, exact)
    return render.encode_aggregate_rows(rows)


def last_messages(
    database: Database,
    kind: str,
    time_range: TimeRange,
    ids: tuple[int, ...] | None,
    exact: bool,
) -> bytes:
    """`{"msgs_by_datapoint_id": {"<id>": {...}}}` for the active datapoints."""
    if ids is not None and not ids:
        return b'{"msgs_by_datapoint_id":{}}'
    statement, params = last_sql(database.postgres, kind, time_range, ids is not None)
    params = _bind_times(database, params)
    if ids is not None:
        params["ids"] = list(ids) if database.postgres else msgspec.json.encode(ids).decode()
    with database.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(database.sql(statement), params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
    if kind == "value":
        body = {str(dp): ValueOut(answer_value(num, raw, exact), ms) for dp, ms, num, raw in rows}
    else:
        body = {
            str(dp): {kind: render.message_items(kind, text, exact), "timestamp": ms}
            for dp, ms, text in rows
        }
    return render.encode({"msgs_by_datapoint_id": body})


def one_message(
    database: Database, kind: str, datapoint_id: int, timestamp: int, exact: bool
) -> bytes | None:
    """The message of one timestamp in the GET shape, or None."""
    time_range = TimeRange(((">=", timestamp), ("<=", timestamp)))
    statement, params = history_sql(database.postgres, kind, time_range)
    params = _bind_times(database, params)
    params["dp"] = datapoint_id
    with database.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(database.sql(statement), params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
    if not rows:
        return None
    return encode_chunk(kind, rows[:1], exact)
