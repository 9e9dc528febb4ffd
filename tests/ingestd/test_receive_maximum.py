"""Who limits how many QoS 1 messages Mosquitto has in flight to ingestd, and to a publisher.

Measured against a private Mosquitto 2.0 configured with `max_inflight_messages 20` (its
default) and one with the 1000 of deploy/mosquitto.conf:
- ingestd's client (the fast one and stock paho) sends its Receive Maximum in CONNECT, and
  Mosquitto honours it over max_inflight_messages: every message of a burst of 200 arrives
  before ingestd acknowledges any; with INGESTD_RECEIVE_MAXIMUM=50, exactly 50 do.
- max_inflight_messages limits an MQTT 3.1.1 subscriber (20 of 200 arrive unacknowledged).
- It is also the Receive Maximum Mosquitto grants every publisher in its CONNACK: with the
  default a connector publishing QoS 1 may have 20 messages unacknowledged, the window the
  benchmark's publisher observes.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from ingestd import mqtt_session
from ingestd.fast_client import FastClient, StockClient
from schema.settings import load_settings
from tests.bench.raw_publisher import RawPublisher, publish_packet
from tests.support.broker import MosquittoProcess

BURST = 200
DEADLINE_S = 30.0
# How long a window that is full stays full before the count is read: a broker that ignored
# the window would have sent the rest of the burst by then.
SETTLE_S = 1.5


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, int]]:
    """max_inflight_messages -> port of a private Mosquitto so configured."""
    started = {}
    try:
        for inflight in (20, 1000):
            broker = MosquittoProcess(
                Path(tmp_path_factory.mktemp(f"inflight{inflight}")),
                extra=f"max_inflight_messages {inflight}\n",
            )
            broker.start()
            started[inflight] = broker
        yield {inflight: broker.port for inflight, broker in started.items()}
    finally:
        for broker in started.values():
            broker.stop()


def _publish_burst(port: int, topic: str) -> None:
    publisher = RawPublisher(port)
    try:
        refused = publisher.publish_all(
            [publish_packet(topic.encode(), b'{"value": %d}' % i, i + 1) for i in range(BURST)]
        )
    finally:
        publisher.close()
    assert refused == 0


def _held_count(received: list[int], expected: int) -> int:
    """Wait until `expected` messages arrived (or the deadline), let the window show whether
    it holds, and return how many arrived."""
    deadline = time.monotonic() + DEADLINE_S
    while len(received) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(SETTLE_S)
    return len(received)


def _ingestd_client_burst(
    port: int, receive_maximum: int | None, monkeypatch: pytest.MonkeyPatch, stock: bool
) -> tuple[int, str]:
    """A burst through ingestd's own session setup, never acknowledged: (arrived, class)."""
    if stock:
        # The path ingestd takes when a paho release changed the internals it relies on.
        monkeypatch.setattr(
            mqtt_session, "select_client_class", lambda: (StockClient, "chosen by the test")
        )
    env = {
        "MQTT_BROKER_HOST": "127.0.0.1",
        "MQTT_BROKER_PORT": str(port),
        "INGESTD_CLIENT_ID": f"test-rm-{secrets.token_hex(4)}",
    }
    if receive_maximum is not None:
        env["INGESTD_RECEIVE_MAXIMUM"] = str(receive_maximum)
    settings = load_settings(env)
    client = mqtt_session.create_client(settings)
    received: list[int] = []
    subscribed = threading.Event()
    topic = f"test-rm-{secrets.token_hex(4)}/messages/1/value"
    client.on_publish_received = lambda _topic, _payload, mid, _qos: received.append(mid)
    client.on_message = lambda _client, _userdata, message: received.append(message.mid)
    client.on_connect = lambda *_args: client.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_args: subscribed.set()
    mqtt_session.start(client, settings)
    try:
        assert subscribed.wait(DEADLINE_S), "ingestd's client did not subscribe"
        _publish_burst(port, topic)
        expected = BURST if receive_maximum is None else receive_maximum
        return _held_count(received, expected), type(client).__name__
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("stock", [False, True], ids=["fast client", "stock paho"])
def test_ingestd_receive_maximum_overrides_max_inflight(
    brokers: dict[int, int], monkeypatch: pytest.MonkeyPatch, stock: bool
) -> None:
    arrived, client_class = _ingestd_client_burst(brokers[20], None, monkeypatch, stock)
    assert client_class == (StockClient if stock else FastClient).__name__
    assert arrived == BURST  # all 200 unacknowledged, beyond max_inflight_messages 20


def test_ingestd_receive_maximum_is_the_window(
    brokers: dict[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Smaller than the broker's 1000: the client's value, not the broker's, governs.
    arrived, _ = _ingestd_client_burst(brokers[1000], 50, monkeypatch, stock=False)
    assert arrived == 50


def test_max_inflight_limits_a_mqtt311_subscriber(brokers: dict[int, int]) -> None:
    received: list[int] = []
    subscribed = threading.Event()
    topic = f"test-rm-{secrets.token_hex(4)}/messages/1/value"
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"test-rm-{secrets.token_hex(4)}",
        protocol=mqtt.MQTTv311,
    )
    client.manual_ack_set(True)
    client.on_message = lambda _client, _userdata, message: received.append(message.mid)
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", brokers[20])
    client.loop_start()
    try:
        client.subscribe(topic, qos=1)
        assert subscribed.wait(DEADLINE_S)
        _publish_burst(brokers[20], topic)
        assert _held_count(received, 20) == 20
    finally:
        client.disconnect()
        client.loop_stop()


def test_publishers_get_max_inflight_as_their_window(brokers: dict[int, int]) -> None:
    for inflight, port in brokers.items():
        publisher = RawPublisher(port)
        try:
            assert publisher.window == inflight
        finally:
            publisher.close()
