"""A connector-like load generator, run as its own process by the benchmarks.

`python -m tests.bench.publisher PREFIX FIRST_ID N_DATAPOINTS COUNT QOS PORT` publishes COUNT
value messages round-robin over the topics PREFIX/messages/<id>/value, each datapoint's
timestamps strictly increasing, and prints one JSON line with its own rate.

QoS 0 goes through paho; QoS 1 through tests.bench.raw_publisher (pre-built packets over a
socket), since paho's own QoS 1 publisher was slower than the subscribers it was to measure.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque

import paho.mqtt.client as mqtt

from tests.bench.raw_publisher import RawPublisher, publish_packet

T0 = 1_795_000_000_000


def payload(i: int, n_datapoints: int) -> bytes:
    return b'{"value": %d.5, "timestamp": %d}' % (i, T0 + i // n_datapoints)


def publish_qos1_raw(prefix: str, first_id: int, n_datapoints: int, count: int, port: str) -> None:
    topics = [f"{prefix}/messages/{first_id + i}/value".encode() for i in range(n_datapoints)]
    packets = [
        publish_packet(topics[i % n_datapoints], payload(i, n_datapoints), i % 65535 + 1)
        for i in range(count)
    ]
    publisher = RawPublisher(int(port))
    started_at = time.time()
    started = time.perf_counter()
    refused = publisher.publish_all(packets)
    elapsed = time.perf_counter() - started
    publisher.close()
    report = {"published": count, "started_at": started_at, "seconds": elapsed}
    report |= {"msgs_per_s": count / elapsed, "window": publisher.window, "refused": refused}
    print(json.dumps(report))


def main() -> None:
    prefix, first_id, n_datapoints, count, qos, port = sys.argv[1:7]
    first_id, n_datapoints, count, qos = int(first_id), int(n_datapoints), int(count), int(qos)
    if qos == 1:
        publish_qos1_raw(prefix, first_id, n_datapoints, count, port)
        return
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="")
    # Within Mosquitto's default window of 20: beyond it 2.0.11 drops QoS > 0 publishes.
    client.max_inflight_messages_set(20)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", int(port))
    client.loop_start()
    topics = [f"{prefix}/messages/{first_id + i}/value".encode() for i in range(n_datapoints)]
    started_at = time.time()
    started = time.perf_counter()
    last = None
    pending: deque = deque()
    for i in range(count):
        dp = i % n_datapoints
        last = client.publish(topics[dp].decode(), payload(i, n_datapoints), qos=qos)
        if qos:
            # paho has 65,535 message ids: keep the queue well below that.
            pending.append(last)
            if len(pending) > 20000:
                pending.popleft().wait_for_publish(120)
        if qos == 0 and i % 2000 == 1999:
            # paho buffers QoS 0 publishes without limit; let the socket drain now and then.
            while client.want_write():
                time.sleep(0.0005)
    if last is not None:
        last.wait_for_publish(120)
    while client.want_write():
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    print(
        json.dumps(
            {
                "published": count,
                "started_at": started_at,
                "seconds": elapsed,
                "msgs_per_s": count / elapsed,
            }
        )
    )


if __name__ == "__main__":
    main()
