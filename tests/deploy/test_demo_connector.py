"""The demo connector against a real Mosquitto: announce, follow the map, answer commands."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from demo.building import ACTUATOR_KEYS, SENSOR_KEYS
from demo.connector import DemoConnector
from tests.deploy.mqtt_recorder import Recorder
from tests.support.broker import MosquittoProcess

NAME = "demo-test"


@pytest.fixture
def recorder(private_broker: MosquittoProcess) -> Iterator[Recorder]:
    rec = Recorder("127.0.0.1", private_broker.port, f"{NAME}/#")
    yield rec
    rec.close()


@pytest.fixture
def connector(private_broker: MosquittoProcess, recorder: Recorder) -> Iterator[DemoConnector]:
    demo = DemoConnector(
        NAME, "127.0.0.1", private_broker.port, value_interval_s=0.2, heartbeat_interval_s=0.5
    )
    demo.start()
    yield demo
    demo.stop()


def is_ms(timestamp: object) -> bool:
    now = time.time() * 1000
    return isinstance(timestamp, int) and abs(timestamp - now) < 60_000


def test_announces_datapoints_heartbeat_and_logs(connector: DemoConnector, recorder: Recorder):
    _, available = recorder.wait_for(lambda t, _: t == f"{NAME}/available_datapoints")
    assert set(available["sensor"]) == set(SENSOR_KEYS)
    assert set(available["actuator"]) == set(ACTUATOR_KEYS)
    assert all(isinstance(v, float) for v in available["sensor"].values())

    _, beat = recorder.wait_for(lambda t, _: t == f"{NAME}/heartbeat")
    assert is_ms(beat["this_heartbeats_timestamp"])
    assert beat["next_heartbeats_timestamp"] - beat["this_heartbeats_timestamp"] == 500
    # A second beat follows at the announced interval.
    recorder.wait_for(
        lambda t, p: t == f"{NAME}/heartbeat" and p != beat,
        timeout=3,
    )

    _, entry = recorder.wait_for(lambda t, _: t == f"{NAME}/logs")
    assert set(entry) == {"timestamp", "msg", "emitter", "level"}
    assert entry["level"] == 20 and is_ms(entry["timestamp"])


def test_available_datapoints_are_retained(connector: DemoConnector, private_broker):
    # A service that subscribes later (ingestd after a restart) still gets the announcement.
    recorder_of_late_comer = None
    try:
        time.sleep(0.3)
        recorder_of_late_comer = Recorder(
            "127.0.0.1", private_broker.port, f"{NAME}/available_datapoints"
        )
        recorder_of_late_comer.wait_for(lambda t, _: True, timeout=3)
        assert recorder_of_late_comer.messages[0][2] is True  # delivered as retained
    finally:
        if recorder_of_late_comer:
            recorder_of_late_comer.close()


def test_sends_nothing_without_a_map_then_only_mapped_sensors(
    connector: DemoConnector, recorder: Recorder
):
    recorder.wait_for(lambda t, _: t == f"{NAME}/heartbeat")
    time.sleep(0.5)
    assert not [t for t, _, _ in recorder.messages if "/messages/" in t]

    datapoint_map = {
        "sensor": {
            "room_temperature": f"{NAME}/messages/1/value",
            "energy_meter": f"{NAME}/messages/3/value",
        },
        "actuator": {},
    }
    recorder.publish(f"{NAME}/datapoint_map", datapoint_map, retain=True, qos=2)
    _, value = recorder.wait_for(lambda t, _: t == f"{NAME}/messages/1/value")
    assert isinstance(value["value"], float) and is_ms(value["timestamp"])
    recorder.wait_for(lambda t, _: t == f"{NAME}/messages/3/value")
    time.sleep(0.6)  # a few more ticks
    assert len(recorder.on_topic(f"{NAME}/messages/1/value")) >= 2
    message_topics = {t for t, _, _ in recorder.messages if "/messages/" in t}
    assert message_topics == {f"{NAME}/messages/1/value", f"{NAME}/messages/3/value"}
    meter = [p["value"] for p in recorder.on_topic(f"{NAME}/messages/3/value")]
    assert meter == sorted(meter), "an energy meter never runs backwards"

    # The empty map (connector deleted) stops all values.
    recorder.publish(f"{NAME}/datapoint_map", {"sensor": {}, "actuator": {}}, retain=True, qos=2)
    recorder.wait_for(lambda t, p: t == f"{NAME}/logs" and "0 sensors" in p["msg"])
    time.sleep(0.3)
    recorder.clear()
    time.sleep(0.6)
    assert not [t for t, _, _ in recorder.messages if "/messages/" in t]


def test_actuator_value_changes_the_setpoint_state(connector: DemoConnector, recorder: Recorder):
    actuator_topic = f"{NAME}/messages/6/value"
    state_topic = f"{NAME}/messages/5/value"
    datapoint_map = {
        "sensor": {"room_setpoint_state": state_topic},
        "actuator": {actuator_topic: "room_setpoint"},
    }
    recorder.publish(f"{NAME}/datapoint_map", datapoint_map, retain=True, qos=2)
    recorder.wait_for(lambda t, p: t == state_topic and p["value"] == 21.0)
    # Let the connector's subscription to the actuator topic settle.
    recorder.wait_for(lambda t, p: t == f"{NAME}/logs" and "1 actuators" in p["msg"])
    time.sleep(0.2)

    # As readapi publishes a REST POST: a JSON number, or a numeric string.
    recorder.publish(actuator_topic, {"value": 23.5, "timestamp": int(time.time() * 1000)})
    recorder.wait_for(lambda t, p: t == state_topic and p["value"] == 23.5)
    recorder.publish(actuator_topic, {"value": "19", "timestamp": int(time.time() * 1000)})
    recorder.wait_for(lambda t, p: t == state_topic and p["value"] == 19.0)
    # Out of the thermostat's range: clamped, not obeyed blindly.
    recorder.publish(actuator_topic, {"value": 99, "timestamp": int(time.time() * 1000)})
    recorder.wait_for(lambda t, p: t == state_topic and p["value"] == 30.0)
    # Not a number: refused with a warning in the connector's log, state unchanged.
    recorder.publish(actuator_topic, {"value": "on", "timestamp": int(time.time() * 1000)})
    recorder.wait_for(lambda t, p: t == f"{NAME}/logs" and p["level"] == 30)
    assert connector.building.setpoint == 30.0

    # A new map moves the actuator to another topic: the old one, which the connector was
    # subscribed to and obeyed, is no longer obeyed. (A topic it never subscribed to would
    # prove nothing: the broker would not deliver it.)
    new_topic = f"{NAME}/messages/7/value"
    recorder.clear()
    moved = {
        "sensor": {"room_setpoint_state": state_topic},
        "actuator": {new_topic: "room_setpoint"},
    }
    recorder.publish(f"{NAME}/datapoint_map", moved, retain=True, qos=2)
    recorder.wait_for(lambda t, p: t == f"{NAME}/logs" and "1 actuators" in p["msg"])
    time.sleep(0.2)
    recorder.publish(actuator_topic, {"value": 15, "timestamp": int(time.time() * 1000)})
    # Sent after it on the same connection, so answered after it: when this one's answer is
    # here, an answer to the old topic would be here too.
    recorder.publish(new_topic, {"value": 21, "timestamp": int(time.time() * 1000)})
    recorder.wait_for(lambda t, p: t == f"{NAME}/logs" and p["msg"] == "room_setpoint set to 21.0.")
    applied = [p["msg"] for p in recorder.on_topic(f"{NAME}/logs") if " set to " in p["msg"]]
    assert applied == ["room_setpoint set to 21.0."]
    assert [p["value"] for p in recorder.on_topic(state_topic)].count(15.0) == 0
    assert connector.building.setpoint == 21.0
