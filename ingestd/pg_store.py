"""Writes batches to PostgreSQL: binary COPY into a staging table, then upserts, one transaction.

Each pooled connection has its own temporary staging tables (emptied at commit), so
N_MTD_WRITE_THREADS writers never share one. Times travel as integer ms and become
timestamptz in SQL, exactly (no float division).
"""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from ingestd.batch import Batch, available_changes, isolate, newest_per_datapoint
from ingestd.db_errors import Verdict, classify_postgres
from schema.topics import SCHEDULE, SETPOINT, VALUE
from schema.upserts import history_sql, last_sql

_TS = "timestamptz 'epoch' + s.ts * interval '1 millisecond'"

_CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_value (
    datapoint_id int4, ts int8, value_num float8, value_raw text, is_last bool
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_plan (
    datapoint_id int4, ts int8, body text, is_last bool
) ON COMMIT DELETE ROWS;
"""

_CLEAR_STAGING = "DELETE FROM stage_value; DELETE FROM stage_plan"

_COPY_VALUES = (
    "COPY stage_value (datapoint_id, ts, value_num, value_raw, is_last) FROM STDIN (FORMAT BINARY)"
)
_VALUE_TYPES = ("int4", "int8", "float8", "text", "bool")
_COPY_PLANS = "COPY stage_plan (datapoint_id, ts, body, is_last) FROM STDIN (FORMAT BINARY)"
_PLAN_TYPES = ("int4", "int8", "text", "bool")

# The EXISTS guard drops rows of a datapoint deleted while its messages were in flight,
# instead of failing the whole batch on the foreign key.
_DATAPOINT_EXISTS = "EXISTS (SELECT 1 FROM datapoint d WHERE d.id = s.datapoint_id)"


def _statements(kind: str, stage: str, payload: str) -> tuple[str, str]:
    """(history insert, last upsert) of a kind, reading its staging table."""
    rows = f"SELECT s.datapoint_id, {_TS}, {payload} FROM {stage} s"
    return (
        history_sql(kind, f"{rows}\nWHERE {_DATAPOINT_EXISTS}"),
        last_sql(kind, f"{rows}\nWHERE s.is_last AND {_DATAPOINT_EXISTS}"),
    )


_INSERT_VALUE_HISTORY, _UPSERT_LAST_VALUE = _statements(
    VALUE, "stage_value", "s.value_num, s.value_raw"
)
_PLAN_SQL = {kind: _statements(kind, "stage_plan", "s.body") for kind in (SETPOINT, SCHEDULE)}

_INSERT_LOG = """
INSERT INTO connector_log_entry (connector_id, timestamp, msg, emitter, level)
SELECT %s, timestamptz 'epoch' + %s * interval '1 millisecond', %s, %s, %s
WHERE EXISTS (SELECT 1 FROM connector c WHERE c.id = %s)
"""

_UPSERT_HEARTBEAT = """
INSERT INTO connector_heartbeat (connector_id, last_heartbeat, next_heartbeat)
SELECT %(c)s, timestamptz 'epoch' + %(last)s * interval '1 millisecond',
       timestamptz 'epoch' + %(next)s * interval '1 millisecond'
WHERE EXISTS (SELECT 1 FROM connector c WHERE c.id = %(c)s)
ON CONFLICT (connector_id) DO UPDATE
SET last_heartbeat = EXCLUDED.last_heartbeat, next_heartbeat = EXCLUDED.next_heartbeat
WHERE connector_heartbeat.last_heartbeat <= EXCLUDED.last_heartbeat
"""

_SELECT_EXAMPLES = (
    "SELECT key_in_connector, type, example_value FROM datapoint WHERE connector_id = %s"
)
_INSERT_DATAPOINT = """
INSERT INTO datapoint (connector_id, key_in_connector, type, is_active, example_value,
                       data_format, description, unit)
SELECT %s, %s, %s, false, %s, 'unknown', '', ''
WHERE EXISTS (SELECT 1 FROM connector c WHERE c.id = %s)
ON CONFLICT (connector_id, key_in_connector, type) DO NOTHING
"""
_UPDATE_EXAMPLE = (
    "UPDATE datapoint SET example_value = %s "
    "WHERE connector_id = %s AND key_in_connector = %s AND type = %s"
)


def _configure_connection(connection: psycopg.Connection) -> None:
    connection.execute(_CREATE_STAGING)
    connection.commit()


RECONNECT_WINDOW_S = 5.0


def create_pool(conninfo: str, size: int) -> ConnectionPool:
    """A pool of `size` connections (one per writer), each with its staging tables."""
    return ConnectionPool(
        conninfo,
        min_size=size,
        max_size=size,
        configure=_configure_connection,
        # The database may be away for long; a writer retries its batch meanwhile (nothing is
        # acknowledged until it commits). psycopg_pool doubles the delay between its attempts
        # to replace a connection without limit, so after an outage of T seconds the next try
        # could be T seconds away. Giving up after a few seconds instead hands the slot back,
        # and the writer's next request for a connection starts a fresh attempt at once: the
        # writers reconnect within seconds of the database's return, however long it was away.
        reconnect_timeout=RECONNECT_WINDOW_S,
        open=False,
        name="ingestd-writers",
    )


class PostgresStore:
    """Writes one Batch per transaction."""

    def __init__(self, pool: ConnectionPool, keep_history: bool) -> None:
        self.pool = pool
        self.keep_history = keep_history

    @staticmethod
    def classify(error: BaseException) -> Verdict:
        return classify_postgres(error)

    def write(self, batch: Batch, timeout: float = 5.0) -> None:
        with (
            self.pool.connection(timeout=timeout) as connection,
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            self._write_batch(cursor, batch)

    def write_isolating(
        self, units: list[tuple[str, tuple]], timeout: float = 5.0
    ) -> list[tuple[int, Exception]]:
        """Write `units` in one transaction, each sub-batch under a savepoint; commit what
        the database takes and return (index, error) of each unit it refuses."""
        with (
            self.pool.connection(timeout=timeout) as connection,
            connection.transaction(),
            connection.cursor() as cursor,
        ):

            def attempt(batch: Batch) -> Exception | None:
                try:
                    with connection.transaction():  # a savepoint
                        # Staging rows of an earlier sub-batch live until commit.
                        cursor.execute(_CLEAR_STAGING)
                        self._write_batch(cursor, batch)
                except Exception as error:
                    if classify_postgres(error).transient:
                        raise
                    return error
                return None

            return isolate(units, attempt)

    def _write_batch(self, cursor: psycopg.Cursor, batch: Batch) -> None:
        if batch.values:
            self._write_values(cursor, batch)
        for kind, rows in (("setpoint", batch.setpoints), ("schedule", batch.schedules)):
            if rows:
                self._write_plans(cursor, kind, rows)
        if batch.logs:
            cursor.executemany(_INSERT_LOG, [(*row, row[0]) for row in batch.logs])
        if batch.heartbeats:
            cursor.executemany(
                _UPSERT_HEARTBEAT,
                [{"c": c, "last": t, "next": n} for c, t, n in batch.heartbeats.values()],
            )
        for connector_id, entries in batch.available:
            self._write_available(cursor, connector_id, entries)

    def _write_values(self, cursor: psycopg.Cursor, batch: Batch) -> None:
        newest = {id(row) for row in newest_per_datapoint(batch.values)}
        with cursor.copy(_COPY_VALUES) as copy:
            copy.set_types(_VALUE_TYPES)
            write_row = copy.write_row
            for row in batch.values.values():
                write_row((*row, id(row) in newest))
        if self.keep_history:
            cursor.execute(_INSERT_VALUE_HISTORY)
        cursor.execute(_UPSERT_LAST_VALUE)

    def _write_plans(self, cursor: psycopg.Cursor, kind: str, rows: dict) -> None:
        history_statement, last_statement = _PLAN_SQL[kind]
        newest = {id(row) for row in newest_per_datapoint(rows)}
        with cursor.copy(_COPY_PLANS) as copy:
            copy.set_types(_PLAN_TYPES)
            for row in rows.values():
                copy.write_row((*row, id(row) in newest))
        if self.keep_history:
            cursor.execute(history_statement)
        cursor.execute(last_statement)
        cursor.execute("DELETE FROM stage_plan")  # the other plan kind may follow

    def _write_available(self, cursor: psycopg.Cursor, connector_id: int, entries) -> None:
        cursor.execute(_SELECT_EXAMPLES, (connector_id,))
        existing = {(key, kind): example for key, kind, example in cursor.fetchall()}
        new, changed = available_changes(entries, existing)
        if new:
            cursor.executemany(
                _INSERT_DATAPOINT, [(connector_id, k, t, e, connector_id) for k, t, e in new]
            )
        if changed:
            cursor.executemany(_UPDATE_EXAMPLE, [(e, connector_id, k, t) for k, t, e in changed])
