"""Datapoint maps and controlled datapoints follow the database without a restart."""

from __future__ import annotations

import json
import time

from sqlalchemy import delete, insert, update

from schema import tables as t
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.support.ingest import (
    Collector,
    create_connector,
    create_datapoints,
    publish_json,
    publisher,
    set_active,
    value_rows,
    wait_for,
)

T0 = 1_795_840_275_000


def _last_json(collector: Collector, topic: str):
    payloads = collector.payloads(topic)
    return json.loads(payloads[-1]) if payloads else None


def test_maps_are_published_at_start_and_follow_activation_within_a_second(ingest):
    name = ingest.connector_name
    sensor, other = create_datapoints(ingest.engine, ingest.connector_id, ["temp", "hum"])
    set_active(ingest.engine, [other], False)
    (actuator,) = create_datapoints(ingest.engine, ingest.connector_id, ["valve"], "actuator")
    collector = Collector(MQTT_HOST, MQTT_PORT, [f"{name}/datapoint_map"])
    try:
        ingest.start()
        expected = {
            "sensor": {"temp": f"{name}/messages/{sensor}/value"},
            "actuator": {f"{name}/messages/{actuator}/value": "valve"},
        }
        wait_for(lambda: _last_json(collector, f"{name}/datapoint_map") == expected)
        retained = [m for m in collector.messages if m.topic == f"{name}/datapoint_map"]
        assert retained[-1].qos == 2
        # The byte layout of the original (Python's json.dumps).
        assert collector.payloads(f"{name}/datapoint_map")[-1] == json.dumps(expected).encode()

        activated_at = time.monotonic()
        set_active(ingest.engine, [other], True)
        expected["sensor"]["hum"] = f"{name}/messages/{other}/value"
        wait_for(lambda: _last_json(collector, f"{name}/datapoint_map") == expected, timeout=1.0)
        assert time.monotonic() - activated_at < 1.0
        assert ingest.daemon.wait_subscribed(5)
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            publish_json(client, ingest.topic(other), {"value": 55, "timestamp": T0})
            wait_for(lambda: value_rows(ingest.engine, other) == [(T0, 55.0, "55")])

        set_active(ingest.engine, [sensor], False)
        del expected["sensor"]["temp"]
        wait_for(lambda: _last_json(collector, f"{name}/datapoint_map") == expected, timeout=1.0)
    finally:
        collector.close()


def test_a_retained_value_arrives_when_its_datapoint_is_activated(ingest):
    (dp,) = create_datapoints(ingest.engine, ingest.connector_id, ["s"], active=False)
    ingest.start()
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        publish_json(client, ingest.topic(dp), {"value": 7, "timestamp": T0}, retain=True)
        set_active(ingest.engine, [dp], True)
        wait_for(lambda: value_rows(ingest.engine, dp) == [(T0, 7.0, "7")], timeout=3)
        publish_json(client, ingest.topic(dp), b"", retain=True)


def test_new_renamed_and_deleted_connectors(ingest, unique_name):
    ingest.start()
    newcomer = unique_name + "-new"
    collector = Collector(
        MQTT_HOST, MQTT_PORT, [f"{newcomer}/datapoint_map", f"{newcomer}-renamed/datapoint_map"]
    )
    try:
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            # A connector announced its datapoints (retained) before anyone registered it.
            publish_json(
                client,
                f"{newcomer}/available_datapoints",
                {"sensor": {"a": 1}, "actuator": {}},
                retain=True,
            )
            connector_id = create_connector(ingest.engine, newcomer)
            wait_for(
                lambda: (
                    _last_json(collector, f"{newcomer}/datapoint_map")
                    == {"sensor": {}, "actuator": {}}
                ),
                timeout=1.0,
            )

            def datapoints():
                with ingest.engine.connect() as c:
                    return c.execute(
                        t.datapoint.select().where(t.datapoint.c.connector_id == connector_id)
                    ).all()

            wait_for(lambda: len(datapoints()) == 1, timeout=3)
            publish_json(client, f"{newcomer}/available_datapoints", b"", retain=True)

            with ingest.engine.begin() as c:
                c.execute(
                    update(t.connector)
                    .where(t.connector.c.id == connector_id)
                    .values(name=newcomer + "-renamed")
                )
            wait_for(
                lambda: (
                    _last_json(collector, f"{newcomer}-renamed/datapoint_map")
                    == {"sensor": {}, "actuator": {}}
                ),
                timeout=1.0,
            )
            dp_id = datapoints()[0].id
            set_active(ingest.engine, [dp_id], True)
            renamed_topic = f"{newcomer}-renamed/messages/{dp_id}/value"
            wait_for(
                lambda: (
                    _last_json(collector, f"{newcomer}-renamed/datapoint_map")
                    == {"sensor": {"a": renamed_topic}, "actuator": {}}
                ),
                timeout=1.0,
            )

            with ingest.engine.begin() as c:
                c.execute(delete(t.connector).where(t.connector.c.id == connector_id))
            wait_for(
                lambda: (
                    _last_json(collector, f"{newcomer}-renamed/datapoint_map")
                    == {"sensor": {}, "actuator": {}}
                ),
                timeout=1.0,
            )
            for topic in (f"{newcomer}/datapoint_map", f"{newcomer}-renamed/datapoint_map"):
                publish_json(client, topic, b"", retain=True)
    finally:
        collector.close()


def test_controllers_get_their_controlled_datapoints(ingest, unique_name):
    name = ingest.connector_name
    (sensor,) = create_datapoints(ingest.engine, ingest.connector_id, ["temp"])
    (actuator,) = create_datapoints(ingest.engine, ingest.connector_id, ["valve"], "actuator")
    controller = unique_name + "-ctl"
    collector = Collector(MQTT_HOST, MQTT_PORT, [f"{controller}/controlled_datapoints"])
    try:
        ingest.start()
        with ingest.engine.begin() as c:
            controller_id = c.execute(
                insert(t.controller).values(name=controller).returning(t.controller.c.id)
            ).scalar_one()
        topic = f"{controller}/controlled_datapoints"
        wait_for(lambda: _last_json(collector, topic) == [], timeout=1.0)
        with ingest.engine.begin() as c:
            c.execute(
                insert(t.controlled_datapoint).values(
                    controller_id=controller_id,
                    sensor_datapoint_id=sensor,
                    actuator_datapoint_id=actuator,
                    is_active=True,
                )
            )
        wait_for(
            lambda: (
                _last_json(collector, topic)
                == [
                    {
                        "sensor": {"value": f"{name}/messages/{sensor}/value"},
                        "actuator": {
                            "value": f"{name}/messages/{actuator}/value",
                            "setpoint": f"{name}/messages/{actuator}/setpoint",
                            "schedule": f"{name}/messages/{actuator}/schedule",
                        },
                    }
                ]
            ),
            timeout=1.0,
        )
        with ingest.engine.begin() as c:
            c.execute(update(t.controlled_datapoint).values(is_active=False))
        wait_for(lambda: _last_json(collector, topic) == [], timeout=1.0)
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            publish_json(client, topic, b"", retain=True)
    finally:
        collector.close()
