"""The ceiling: a bare paho subscriber that only counts what it receives.

`python -m tests.bench.ceiling PREFIX COUNT QOS PORT` prints "ready" once subscribed, then,
once COUNT messages have arrived (or 120 s passed), one JSON line with the count and the
time from the first to the last message.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import paho.mqtt.client as mqtt


def main() -> None:
    prefix, count, qos, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    received = 0
    first = last = 0.0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_client, _userdata, _message):
        nonlocal received, first, last
        last = time.perf_counter()
        if received == 0:
            first = last
        received += 1
        if received >= count:
            done.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"ceiling-{prefix}", protocol=mqtt.MQTTv5
    )
    client.on_message = on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    properties.ReceiveMaximum = 20000  # the same window ingestd asks for
    client.connect("127.0.0.1", int(port), properties=properties)
    client.subscribe(f"{prefix}/messages/#", qos=qos)
    client.loop_start()
    print("ready" if subscribed.wait(30) else "not subscribed", flush=True)
    done.wait(120)
    client.loop_stop()
    client.disconnect()
    last_at = time.time() - (time.perf_counter() - last)
    print(json.dumps({"received": received, "last_at": last_at}), flush=True)


if __name__ == "__main__":
    main()
