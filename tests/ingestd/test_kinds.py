"""Logs, heartbeats, available datapoints, setpoints, schedules, and bad input among good."""

from __future__ import annotations

import json

from sqlalchemy import select

from schema import tables as t
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.support.ingest import (
    count_rows,
    create_datapoints,
    metric_total,
    publish_json,
    publisher,
    value_rows,
    wait_for,
)

T0 = 1_795_840_275_000


def _rows(engine, query):
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def test_logs_and_heartbeats_are_stored(ingest):
    ingest.start()
    name = ingest.connector_name
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        publish_json(
            client,
            f"{name}/logs",
            {"timestamp": T0, "msg": "started", "emitter": "main", "level": 20},
        )
        publish_json(
            client,
            f"{name}/logs",
            {"timestamp": T0 + 1, "msg": "Grüße", "level": 40, "emitter": None},
        )
        publish_json(
            client,
            f"{name}/heartbeat",
            {"this_heartbeats_timestamp": T0, "next_heartbeats_timestamp": T0 + 30_000},
        )
        publish_json(
            client,
            f"{name}/heartbeat",
            {"this_heartbeats_timestamp": T0 + 30_000, "next_heartbeats_timestamp": T0 + 60_000},
        )
        wait_for(lambda: count_rows(ingest.engine, t.connector_log_entry) == 2)
        wait_for(
            lambda: (
                _rows(ingest.engine, select(t.connector_heartbeat.c.last_heartbeat))
                == [(T0 + 30_000,)]
            )
        )
    log = t.connector_log_entry
    assert _rows(
        ingest.engine,
        select(log.c.timestamp, log.c.msg, log.c.emitter, log.c.level).order_by(log.c.timestamp),
    ) == [
        (T0, "started", "main", 20),
        (T0 + 1, "Grüße", None, 40),
    ]
    heartbeat = t.connector_heartbeat
    assert _rows(ingest.engine, select(heartbeat.c.connector_id, heartbeat.c.next_heartbeat)) == [
        (ingest.connector_id, T0 + 60_000)
    ]


def test_available_datapoints_create_inactive_datapoints_and_keep_examples_current(ingest):
    ingest.start()
    topic = f"{ingest.connector_name}/available_datapoints"
    dp = t.datapoint
    query = (
        select(dp.c.key_in_connector, dp.c.type, dp.c.is_active, dp.c.example_value)
        .where(dp.c.connector_id == ingest.connector_id)
        .order_by(dp.c.type, dp.c.key_in_connector)
    )
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        publish_json(
            client, topic, {"sensor": {"temp": 21.5, "name": "x"}, "actuator": {}}, retain=True
        )
        wait_for(lambda: len(_rows(ingest.engine, query)) == 2)
        # The connector learns more and an example changes; the same key as actuator is new.
        publish_json(
            client,
            topic,
            {"sensor": {"temp": 22, "name": "x", "on": True}, "actuator": {"temp": "18.0"}},
            retain=True,
        )
        wait_for(lambda: len(_rows(ingest.engine, query)) == 4)
        wait_for(lambda: ("sensor", "22") in [(r[1], r[3]) for r in _rows(ingest.engine, query)])
        publish_json(client, topic, b"", retain=True)  # clear the retained message again
    assert _rows(ingest.engine, query) == [
        ("temp", "actuator", False, '"18.0"'),
        ("name", "sensor", False, '"x"'),
        ("on", "sensor", False, "true"),
        ("temp", "sensor", False, "22"),
    ]


def test_setpoints_and_schedules_of_actuators(ingest):
    (actuator,) = create_datapoints(ingest.engine, ingest.connector_id, ["a1"], kind="actuator")
    ingest.start()
    setpoint = [
        {
            "from_timestamp": None,
            "to_timestamp": T0 + 3600_000,
            "preferred_value": 21.0,
            "min_value": 19.0,
            "max_value": 23.5,
        }
    ]
    schedule = [
        {"from_timestamp": None, "to_timestamp": T0 + 10, "value": 19.5},
        {"from_timestamp": T0 + 10, "to_timestamp": None, "value": None},
    ]
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        publish_json(
            client, ingest.topic(actuator, "setpoint"), {"setpoint": setpoint, "timestamp": T0}
        )
        publish_json(
            client, ingest.topic(actuator, "schedule"), {"schedule": schedule, "timestamp": T0 + 1}
        )
        publish_json(
            client, ingest.topic(actuator, "schedule"), {"schedule": None, "timestamp": T0 + 2}
        )
        publish_json(client, ingest.topic(actuator, "value"), {"value": "on", "timestamp": T0})
        wait_for(lambda: count_rows(ingest.engine, t.datapoint_schedule) == 2)
        wait_for(lambda: count_rows(ingest.engine, t.datapoint_setpoint) == 1)
        wait_for(lambda: len(value_rows(ingest.engine, actuator)) == 1)
    stored = _rows(
        ingest.engine, select(t.datapoint_setpoint.c.time, t.datapoint_setpoint.c.setpoint)
    )
    assert [(time, json.loads(text)) for time, text in stored] == [(T0, setpoint)]
    last = _rows(
        ingest.engine,
        select(t.datapoint_last_schedule.c.time, t.datapoint_last_schedule.c.schedule),
    )
    assert last == [(T0 + 2, "null")]


def test_bad_payloads_are_counted_and_the_messages_around_them_stored(ingest):
    (dp,) = create_datapoints(ingest.engine, ingest.connector_id, ["s1"])
    (inactive,) = create_datapoints(ingest.engine, ingest.connector_id, ["s2"], active=False)
    daemon = ingest.start()
    bad = [
        b"not json at all",
        b'{"value": 1}',  # no timestamp
        b'{"value": 1, "timestamp": "soon"}',  # wrong type
        b'{"value": 1, "timestamp": 1795840275}',  # seconds
        b'{"value": 1, "timestamp": 1795840275.5}',
        b"[1, 2]",
        b"",
        b"\xff\xfe",
    ]
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        for i, payload in enumerate(bad):
            publish_json(client, ingest.topic(dp), {"value": i, "timestamp": T0 + i})
            publish_json(client, ingest.topic(dp), payload)
        publish_json(client, ingest.topic(dp), {"value": "end", "timestamp": T0 + 100})
        # Not active, and not a datapoint at all: rejected too, and counted.
        publish_json(client, ingest.topic(inactive), {"value": 1, "timestamp": T0})
        publish_json(client, f"{ingest.connector_name}/heartbeat", b'{"this": 1}')
        wait_for(lambda: len(value_rows(ingest.engine, dp)) == len(bad) + 1)

    def rejected(cause):
        return metric_total(daemon, "ingestd_messages_rejected", cause=cause)

    wait_for(lambda: rejected("invalid_payload") >= 1 + 4)
    assert rejected("malformed_json") == 2  # not json, empty
    assert rejected("invalid_utf8") == 1
    assert rejected("invalid_payload") == 5  # no timestamp, str, float, list, heartbeat
    assert rejected("bad_timestamp") == 1
    # The subscription of an inactive datapoint does not exist, so the broker never sends it.
    assert [row[0] for row in value_rows(ingest.engine, dp)] == [
        *(T0 + i for i in range(len(bad))),
        T0 + 100,
    ]
    assert count_rows(ingest.engine, t.datapoint_value, datapoint_id=inactive) == 0
