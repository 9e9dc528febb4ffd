"""Issue 12, finding 3: database errors classed as the database classes them.

A permanent error (here an announced key of ~6,400 bytes, over PostgreSQL's btree row
limit: SQLSTATE 54, ProgramLimitExceeded, an OperationalError that was retried forever)
costs only the rows that cause it: the rest of the batch is stored, the refused rows are
counted with a cause, and the writer goes on. Real PostgreSQL, real SQLite, real broker.
"""

from __future__ import annotations

import secrets
import sqlite3

import psycopg
import pytest
from sqlalchemy import select, text

from ingestd.db_errors import classify_postgres, classify_sqlite
from schema import tables as t
from tests.conftest import MQTT_HOST, MQTT_PORT, PG_HOST, PG_PORT, PG_USER
from tests.support.broker import free_port
from tests.support.ingest import (
    create_datapoints,
    metric_total,
    now_ms,
    publish_json,
    publisher,
    value_rows,
    wait_for,
)


def _keys(engine, connector_id: int) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                select(t.datapoint.c.key_in_connector).where(
                    t.datapoint.c.connector_id == connector_id
                )
            ).scalars()
        )


def _healthy(daemon) -> bool:
    return (
        daemon.dead_threads() == []
        and daemon.metrics.registry.get_sample_value("ingestd_ready") == 1
    )


def test_an_oversized_key_costs_only_itself(ingest):
    (dp,) = create_datapoints(ingest.engine, ingest.connector_id, ["s1"])
    daemon = ingest.start()
    long_key = secrets.token_urlsafe(4800)  # ~6,400 bytes that do not compress
    assert len(long_key.encode()) == 6400
    announcement = {"sensor": {"good-a": 1, long_key: 2, "good-b": 3}, "actuator": {}}
    start = now_ms()
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        publish_json(client, ingest.topic(dp), {"value": 1, "timestamp": start})
        publish_json(client, f"{ingest.connector_name}/available_datapoints", announcement)
        publish_json(client, ingest.topic(dp), {"value": 2, "timestamp": start + 1})
    wait_for(lambda: {"good-a", "good-b"} <= _keys(ingest.engine, ingest.connector_id), 30)
    wait_for(lambda: len(value_rows(ingest.engine, dp)) == 2)
    refused = metric_total(
        daemon,
        "ingestd_messages_rejected",
        kind="available_datapoints",
        cause="db_program_limit_exceeded",
    )
    if ingest.settings.uses_postgres:
        assert refused == 1
        assert _keys(ingest.engine, ingest.connector_id) == {"s1", "good-a", "good-b"}
    else:  # SQLite has no such limit: the key is stored like any other
        assert refused == 0
        assert long_key in _keys(ingest.engine, ingest.connector_id)
    # The writer goes on.
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        publish_json(client, ingest.topic(dp), {"value": 3, "timestamp": start + 2})
    wait_for(lambda: len(value_rows(ingest.engine, dp)) == 3)
    assert _healthy(daemon)


_POSTGRES_TRIGGER = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.value_raw = '"poison"' THEN
        RAISE EXCEPTION 'poison refused' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON datapoint_value
FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""
_SQLITE_TRIGGER = """
CREATE TRIGGER refuse_poison BEFORE INSERT ON datapoint_value
WHEN NEW.value_raw = '"poison"' BEGIN SELECT RAISE(ABORT, 'poison refused'); END
"""


def test_rows_the_database_refuses_cost_only_themselves(ingest):
    """A refusal the database makes about a row (a CHECK-like trigger), among 60 values sent
    at once: the 57 others are stored exactly, the 3 counted, on both backends."""
    dps = create_datapoints(ingest.engine, ingest.connector_id, ["s1", "s2", "s3"])
    with ingest.engine.begin() as connection:
        trigger = _POSTGRES_TRIGGER if ingest.settings.uses_postgres else _SQLITE_TRIGGER
        if ingest.settings.uses_postgres:
            connection.exec_driver_sql(trigger)
        else:
            connection.exec_driver_sql(trigger.strip())
    daemon = ingest.start()
    start = now_ms()
    expected: dict[int, list[tuple[int, str]]] = {dp: [] for dp in dps}
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        infos = []
        for i in range(60):
            dp = dps[i % 3]
            value = "poison" if i % 20 == 7 else f"v{i}"
            payload = b'{"value": "%s", "timestamp": %d}' % (value.encode(), start + i)
            infos.append(client.publish(ingest.topic(dp), payload, qos=1))
            if value != "poison":
                expected[dp].append((start + i, f'"{value}"'))
        for info in infos:
            info.wait_for_publish(10)
    for dp in dps:
        wait_for(lambda dp=dp: len(value_rows(ingest.engine, dp)) == len(expected[dp]), 30)
        assert [(time, raw) for time, _num, raw in value_rows(ingest.engine, dp)] == expected[dp]
    wait_for(lambda: metric_total(daemon, "ingestd_messages_rejected", kind="value") == 3)
    assert metric_total(daemon, "ingestd_messages_rejected", cause="db_integrity_violation") == 3
    assert metric_total(daemon, "ingestd_messages_stored", kind="value") == 57
    assert metric_total(daemon, "ingestd_database_errors", type="permanent") >= 1
    with ingest.engine.connect() as connection:
        last = connection.execute(text("SELECT count(*) FROM datapoint_last_value")).scalar_one()
    assert last == 3
    assert _healthy(daemon)


def _postgres_error(sql: str) -> psycopg.Error:
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres") as conn:
        try:
            conn.execute(sql)
        except psycopg.Error as error:
            return error
    raise AssertionError(f"no error from {sql!r}")


def _raise(sqlstate: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{sqlstate}'; END $$"


@pytest.mark.parametrize(
    ("sql", "transient", "cause"),
    [
        ("SELECT 1/0", False, "db_data_exception"),
        ("SELECT 'x'::int", False, "db_data_exception"),
        (
            "CREATE TEMP TABLE u (k int PRIMARY KEY); INSERT INTO u VALUES (1), (1)",
            False,
            "db_integrity_violation",
        ),
        ("SELEC 1", False, "db_syntax_or_access"),
        ("SELECT * FROM no_such_table", False, "db_syntax_or_access"),
        (
            "CREATE TEMP TABLE k (k text PRIMARY KEY); "
            "INSERT INTO k SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i",
            False,
            "db_program_limit_exceeded",
        ),
        ("SET statement_timeout = 10; SELECT pg_sleep(2)", True, "db_refused"),
        (_raise("08006"), True, "db_refused"),
        (_raise("40001"), True, "db_refused"),
        (_raise("40P01"), True, "db_refused"),
        (_raise("53100"), True, "db_refused"),
        (_raise("57P01"), True, "db_refused"),
        (_raise("58030"), True, "db_refused"),
        (_raise("55P03"), True, "db_refused"),
        (_raise("XX000"), False, "db_refused"),
    ],
)
def test_postgres_errors_are_classed_by_sqlstate(sql, transient, cause):
    error = _postgres_error(sql)
    verdict = classify_postgres(error)
    assert (verdict.transient, verdict.cause) == (transient, cause), error.sqlstate


def test_postgres_connection_failures_are_transient():
    try:
        psycopg.connect(host="127.0.0.1", port=free_port(), user=PG_USER, connect_timeout=2)
    except psycopg.OperationalError as error:
        assert classify_postgres(error).transient
    else:
        raise AssertionError("connected to a port nobody listens on")
    assert classify_postgres(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "x")).cause == (
        "write_error"
    )


def test_sqlite_errors_are_classed_by_result_code(tmp_path):
    path = tmp_path / "classes.sqlite3"
    first = sqlite3.connect(path, isolation_level=None, timeout=0)
    second = sqlite3.connect(path, isolation_level=None, timeout=0)
    first.execute("CREATE TABLE u (k text PRIMARY KEY)")
    first.execute("INSERT INTO u VALUES ('a')")

    def error_of(connection, sql, *params) -> sqlite3.Error:
        try:
            connection.execute(sql, params)
        except sqlite3.Error as error:
            return error
        raise AssertionError(f"no error from {sql!r}")

    verdict = classify_sqlite(error_of(first, "INSERT INTO u VALUES ('a')"))
    assert (verdict.transient, verdict.cause) == (False, "db_integrity_violation")
    verdict = classify_sqlite(error_of(first, "SELEC 1"))
    assert (verdict.transient, verdict.cause) == (False, "db_syntax_or_access")
    first.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100)
    verdict = classify_sqlite(error_of(first, "INSERT INTO u VALUES (?)", "x" * 1000))
    assert (verdict.transient, verdict.cause) == (False, "db_program_limit_exceeded")
    first.execute("BEGIN IMMEDIATE")
    busy = error_of(second, "BEGIN IMMEDIATE")
    assert busy.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    assert classify_sqlite(busy).transient
    first.execute("ROLLBACK")
    first.close()
    second.close()
