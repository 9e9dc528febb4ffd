"""The second ceiling: ingestd's own MQTT client and session, with a commit that does nothing.

`python -m tests.bench.client_ceiling PREFIX COUNT QOS PORT FIRST_ID N_DATAPOINTS` connects
as ingestd does (mqtt_session: the fast client when paho's internals allow it, MQTT 5, a
persistent session, its Receive Maximum, manual acknowledgement), subscribes to the exact
topic of every datapoint at ingestd's subscription QoS in its chunks, and hands each message
to a "writer" thread that acknowledges every batch after a no-op commit. It prints "ready"
once every subscription is granted, then one JSON line as tests.bench.ceiling does.

Against the bare subscriber this measures what ingestd's client and session settings cost;
against ingestd it measures what storing costs.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from collections import deque

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingestd import mqtt_session
from ingestd.control_plane import SUBSCRIBE_CHUNK, SUBSCRIPTION_QOS
from schema.settings import load_settings

_DEADLINE_S = 120.0


def main() -> None:
    prefix, count, _qos, port, first_id, n_datapoints = sys.argv[1:7]
    count, first_id, n_datapoints = int(count), int(first_id), int(n_datapoints)
    client_id = f"client-ceiling-{secrets.token_hex(4)}"
    settings = load_settings(
        {"MQTT_BROKER_HOST": "127.0.0.1", "MQTT_BROKER_PORT": port, "INGESTD_CLIENT_ID": client_id}
    )
    client = mqtt_session.create_client(settings)
    inbox: deque[tuple[int, int]] = deque()
    received = 0
    last = 0.0
    done = threading.Event()
    pending: set[int] = set()
    subscribed = threading.Event()
    topics = [f"{prefix}/messages/{first_id + i}/value" for i in range(n_datapoints)]

    def take(_topic: str, _payload: bytes, mid: int, qos: int) -> None:
        nonlocal received, last
        last = time.perf_counter()
        received += 1
        inbox.append((mid, qos))
        if received >= count:
            done.set()

    def on_connect(_client, _userdata, _flags, _reason, _properties) -> None:
        options = SubscribeOptions(qos=SUBSCRIPTION_QOS)
        for start in range(0, len(topics), SUBSCRIBE_CHUNK):
            chunk = topics[start : start + SUBSCRIBE_CHUNK]
            pending.add(client.subscribe([(topic, options) for topic in chunk])[1])

    def on_subscribe(_client, _userdata, mid, _codes, _properties) -> None:
        pending.discard(mid)
        if not pending:
            subscribed.set()

    def writer() -> None:
        # A writer's loop with the database left out: take a batch, "commit", acknowledge.
        while not done.is_set() or inbox:
            batch = []
            while inbox and len(batch) < settings.ingestd_max_batch:
                batch.append(inbox.popleft())
            if batch:
                client.ack_many(batch)
            else:
                time.sleep(0.002)

    client.on_publish_received = take
    client.on_message = lambda _c, _u, m: take(m.topic, m.payload, m.mid, m.qos)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    mqtt_session.start(client, settings)
    acker = threading.Thread(target=writer, daemon=True)
    acker.start()
    print("ready" if subscribed.wait(30) else "not subscribed", flush=True)
    done.wait(_DEADLINE_S)
    done.set()
    acker.join(10)
    time.sleep(0.2)  # let the last acknowledgements go out
    client.disconnect()
    client.loop_stop()
    # Leave no persistent session behind on the broker.
    cleaner = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    cleaner.connect("127.0.0.1", int(port), clean_start=True)
    cleaner.disconnect()
    last_at = time.time() - (time.perf_counter() - last)
    print(
        json.dumps(
            {
                "received": received,
                "last_at": last_at,
                "fast_client": type(client).__name__ == "FastClient",
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
