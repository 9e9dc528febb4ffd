"""A connector over real MQTT, as PROTOCOL.md describes one: it announces its datapoints
(retained), sends heartbeats, follows the datapoint map it is given, and publishes a value
for every sensor in it, every half second."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt


class FakeConnector:
    def __init__(self, host: str, port: int, name: str, sensors: dict, actuators: dict) -> None:
        self.name = name
        self.sensors = sensors
        self.actuators = actuators
        self.value_topics: dict[str, str] = {}  # key -> topic, from the datapoint map
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{name}/datapoint_map", qos=2)
        self.client.on_message = self._on_map
        self.client.connect(host, port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_map(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        if not message.payload:
            return
        sensor_map = json.loads(message.payload).get("sensor", {})
        with self._lock:
            self.value_topics = dict(sensor_map)

    def start(self) -> None:
        announcement = {"sensor": self.sensors, "actuator": self.actuators}
        self.client.publish(
            f"{self.name}/available_datapoints", json.dumps(announcement), qos=1, retain=True
        ).wait_for_publish(5)
        self._thread.start()

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(0.5):
            now = int(time.time() * 1000)
            beat = {"this_heartbeats_timestamp": now, "next_heartbeats_timestamp": now + 5000}
            self.client.publish(f"{self.name}/heartbeat", json.dumps(beat))
            with self._lock:
                topics = dict(self.value_topics)
            for key, topic in topics.items():
                base = self.sensors[key]
                value = round(base + (tick % 10) / 10, 2) if isinstance(base, float) else base
                self.client.publish(topic, json.dumps({"value": value, "timestamp": now}), qos=1)
                self.sent += 1
            tick += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        # Leave no retained messages on the shared broker.
        for suffix in ("available_datapoints", "datapoint_map"):
            self.client.publish(f"{self.name}/{suffix}", b"", qos=1, retain=True).wait_for_publish(
                5
            )
        self.client.loop_stop()
        self.client.disconnect()
