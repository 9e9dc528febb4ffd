"""Writes batches to SQLite: one writer, WAL, one transaction of executemany per batch."""

from __future__ import annotations

import sqlite3

from ingestd.batch import Batch, available_changes, isolate, newest_per_datapoint
from ingestd.db_errors import Verdict, classify_sqlite
from schema.topics import SCHEDULE, SETPOINT, VALUE
from schema.upserts import history_sql, last_sql

_DATAPOINT_EXISTS = "EXISTS (SELECT 1 FROM datapoint d WHERE d.id = ?1)"
_CONNECTOR_EXISTS = "EXISTS (SELECT 1 FROM connector c WHERE c.id = ?1)"


def _statements(kind: str, payload: str) -> tuple[str, str]:
    """(history insert, last upsert) of a kind, for one message's parameters."""
    rows = f"SELECT ?1, ?2, {payload} WHERE {_DATAPOINT_EXISTS}"
    return history_sql(kind, rows), last_sql(kind, rows)


_INSERT_VALUE_HISTORY, _UPSERT_LAST_VALUE = _statements(VALUE, "?3, ?4")
_PLAN_SQL = {kind: _statements(kind, "?3") for kind in (SETPOINT, SCHEDULE)}

_INSERT_LOG = f"""
INSERT INTO connector_log_entry (connector_id, timestamp, msg, emitter, level)
SELECT ?1, ?2, ?3, ?4, ?5 WHERE {_CONNECTOR_EXISTS}
"""
_UPSERT_HEARTBEAT = f"""
INSERT INTO connector_heartbeat (connector_id, last_heartbeat, next_heartbeat)
SELECT ?1, ?2, ?3 WHERE {_CONNECTOR_EXISTS}
ON CONFLICT (connector_id) DO UPDATE
SET last_heartbeat = excluded.last_heartbeat, next_heartbeat = excluded.next_heartbeat
WHERE connector_heartbeat.last_heartbeat <= excluded.last_heartbeat
"""
_SELECT_EXAMPLES = (
    "SELECT key_in_connector, type, example_value FROM datapoint WHERE connector_id = ?"
)
_INSERT_DATAPOINT = f"""
INSERT INTO datapoint (connector_id, key_in_connector, type, is_active, example_value,
                       data_format, description, unit)
SELECT ?1, ?2, ?3, 0, ?4, 'unknown', '', '' WHERE {_CONNECTOR_EXISTS}
ON CONFLICT (connector_id, key_in_connector, type) DO NOTHING
"""
_UPDATE_EXAMPLE = (
    "UPDATE datapoint SET example_value = ? "
    "WHERE connector_id = ? AND key_in_connector = ? AND type = ?"
)


class SqliteStore:
    """Writes one Batch per transaction on a single connection (SQLite has one writer)."""

    def __init__(self, connection: sqlite3.Connection, keep_history: bool) -> None:
        self.connection = connection
        self.keep_history = keep_history

    @staticmethod
    def classify(error: BaseException) -> Verdict:
        # "database is locked" (readapi writing), "disk I/O error", "database or disk is
        # full" are transient: the batch is kept and retried rather than dropped.
        return classify_sqlite(error)

    def write(self, batch: Batch, timeout: float = 30.0) -> None:
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            self._write_batch(batch)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def write_isolating(self, units: list[tuple[str, tuple]]) -> list[tuple[int, Exception]]:
        """Write `units` in one transaction, each sub-batch under a savepoint; commit what
        the database takes and return (index, error) of each unit it refuses."""
        connection = self.connection

        def attempt(batch: Batch) -> Exception | None:
            connection.execute("SAVEPOINT sub_batch")
            try:
                self._write_batch(batch)
            except Exception as error:
                connection.execute("ROLLBACK TO sub_batch")
                connection.execute("RELEASE sub_batch")
                if classify_sqlite(error).transient:
                    raise
                return error
            connection.execute("RELEASE sub_batch")
            return None

        connection.execute("BEGIN IMMEDIATE")
        try:
            refused = isolate(units, attempt)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return refused

    def _write_batch(self, batch: Batch) -> None:
        connection = self.connection
        if batch.values:
            if self.keep_history:
                connection.executemany(_INSERT_VALUE_HISTORY, batch.values.values())
            connection.executemany(_UPSERT_LAST_VALUE, newest_per_datapoint(batch.values))
        for kind, rows in (("setpoint", batch.setpoints), ("schedule", batch.schedules)):
            if rows:
                history_statement, last_statement = _PLAN_SQL[kind]
                if self.keep_history:
                    connection.executemany(history_statement, rows.values())
                connection.executemany(last_statement, newest_per_datapoint(rows))
        if batch.logs:
            connection.executemany(_INSERT_LOG, batch.logs)
        if batch.heartbeats:
            connection.executemany(_UPSERT_HEARTBEAT, batch.heartbeats.values())
        for connector_id, entries in batch.available:
            self._write_available(connector_id, entries)

    def _write_available(self, connector_id: int, entries) -> None:
        rows = self.connection.execute(_SELECT_EXAMPLES, (connector_id,)).fetchall()
        existing = {(key, kind): example for key, kind, example in rows}
        new, changed = available_changes(entries, existing)
        if new:
            self.connection.executemany(
                _INSERT_DATAPOINT, [(connector_id, k, t, e) for k, t, e in new]
            )
        if changed:
            self.connection.executemany(
                _UPDATE_EXAMPLE, [(e, connector_id, k, t) for k, t, e in changed]
            )
