"""A real MQTT client that records what arrives, for tests that watch a connector."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Recorder:
    def __init__(self, host: str, port: int, topic_filter: str) -> None:
        self.messages: list[tuple[str, Any, bool]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=2)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "recorder could not subscribe"

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        payload = json.loads(message.payload) if message.payload else None
        with self._cond:
            self.messages.append((message.topic, payload, bool(message.retain)))
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[str, Any], bool], timeout: float = 5.0
    ) -> tuple[str, Any]:
        """The first message (already received or arriving) for which predicate holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for topic, payload, _retained in self.messages:
                    if predicate(topic, payload):
                        return topic, payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({t for t, _, _ in self.messages})
                    raise AssertionError(f"no matching message within {timeout} s; saw {seen}")
                self._cond.wait(remaining)

    def on_topic(self, topic: str) -> list[Any]:
        with self._cond:
            return [p for t, p, _ in self.messages if t == topic]

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def publish(self, topic: str, payload: Any, retain: bool = False, qos: int = 1) -> None:
        self.client.publish(topic, json.dumps(payload), qos=qos, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
