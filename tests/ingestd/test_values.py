"""Value messages: stored exactly as sent, replaced on repeat, last value never regresses."""

from __future__ import annotations

from sqlalchemy import select

from schema import tables as t
from schema.values import join_value
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.support.ingest import (
    count_rows,
    create_datapoints,
    publish_json,
    publisher,
    value_rows,
    wait_for,
)

T0 = 1_795_840_275_488

ROUND_TRIP = [
    b"21.5",
    b"0.30000000000000004",
    b"-1.25e-07",
    b"42",
    b"9007199254740993",
    b'"18.0"',
    b'"hello world"',
    b'"Gr\\u00fc\\u00dfe \\u2713"',
    '"Grüße ✓"'.encode(),
    b"true",
    b"false",
    b"null",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b'{"a": [1, 2.5, null]}',
    b"[1, 2]",
]


def _last_value(engine, datapoint_id):
    table = t.datapoint_last_value
    with engine.connect() as connection:
        return connection.execute(
            select(table.c.time, table.c.value_num, table.c.value_raw).where(
                table.c.datapoint_id == datapoint_id
            )
        ).first()


def test_every_json_value_comes_back_exactly_as_sent(ingest):
    (dp,) = create_datapoints(ingest.engine, ingest.connector_id, ["s1"])
    ingest.start()
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        for offset, value in enumerate(ROUND_TRIP):
            payload = b'{"value": ' + value + b', "timestamp": ' + str(T0 + offset).encode() + b"}"
            publish_json(client, ingest.topic(dp), payload)
        wait_for(lambda: count_rows(ingest.engine, t.datapoint_value) == len(ROUND_TRIP))
    rows = value_rows(ingest.engine, dp)
    assert [time for time, _, _ in rows] == [T0 + i for i in range(len(ROUND_TRIP))]
    assert [join_value(num, raw) for _, num, raw in rows] == [v.decode() for v in ROUND_TRIP]
    # Numbers and numeric strings are averageable in SQL; the rest is not.
    by_text = {join_value(num, raw): num for _, num, raw in rows}
    assert by_text["42"] == 42.0
    assert by_text['"18.0"'] == 18.0
    assert by_text["9007199254740993"] == 9007199254740992.0
    assert by_text["true"] is None and by_text["NaN"] is None
    last = _last_value(ingest.engine, dp)
    assert last.time == T0 + len(ROUND_TRIP) - 1
    assert join_value(last.value_num, last.value_raw) == ROUND_TRIP[-1].decode()


def test_a_repeat_replaces_and_the_last_value_never_goes_back(ingest):
    (dp,) = create_datapoints(ingest.engine, ingest.connector_id, ["s1"])
    ingest.start()
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        publish_json(client, ingest.topic(dp), {"value": 1.5, "timestamp": T0 + 10})
        wait_for(lambda: _last_value(ingest.engine, dp) is not None)
        # Same timestamp again: an update, not a second row.
        publish_json(client, ingest.topic(dp), {"value": 2.5, "timestamp": T0 + 10})
        wait_for(lambda: value_rows(ingest.engine, dp) == [(T0 + 10, 2.5, None)])
        # An older message (a late replay) is history, but not the last value.
        publish_json(client, ingest.topic(dp), {"value": 0.5, "timestamp": T0})
        wait_for(lambda: len(value_rows(ingest.engine, dp)) == 2)
    assert value_rows(ingest.engine, dp) == [(T0, 0.5, None), (T0 + 10, 2.5, None)]
    last = _last_value(ingest.engine, dp)
    assert (last.time, last.value_num) == (T0 + 10, 2.5)


def test_without_history_only_the_last_value_is_kept(db_env, unique_name):
    from tests.ingestd.conftest import IngestFixture, ingest_settings

    fixture = IngestFixture(
        ingest_settings(db_env, ACTIVATE_HISTORY_EXTENSION="FALSE"), unique_name
    )
    (dp,) = create_datapoints(fixture.engine, fixture.connector_id, ["s1"])
    fixture.start()
    try:
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            for i in range(5):
                publish_json(client, fixture.topic(dp), {"value": i, "timestamp": T0 + i})
            wait_for(lambda: (_last_value(fixture.engine, dp) or (0,))[0] == T0 + 4)
        assert count_rows(fixture.engine, t.datapoint_value) == 0
    finally:
        fixture.stop()
        fixture.engine.dispose()
