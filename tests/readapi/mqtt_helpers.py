"""A real paho subscriber for tests: collects what the broker delivers."""

from __future__ import annotations

import queue
import secrets

import paho.mqtt.client as mqtt

from tests.conftest import MQTT_HOST, MQTT_PORT


class Subscriber:
    def __init__(self, topic: str) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{secrets.token_hex(4)}"
        )
        subscribed = queue.Queue()
        self.client.on_message = lambda c, u, message: self.messages.put(message)
        self.client.on_subscribe = lambda *args: subscribed.put(True)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=2)
        self.client.connect(MQTT_HOST, MQTT_PORT)
        self.client.loop_start()
        subscribed.get(timeout=5)

    def next(self, timeout: float = 5.0) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.messages.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def clear_retained(topic: str) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(MQTT_HOST, MQTT_PORT)
    client.loop_start()
    client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
