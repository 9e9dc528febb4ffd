"""A connector-like publisher at a steady rate, run as its own process by the soak test.

`python -m tests.soak.paced_publisher PREFIX FIRST_ID N_DATAPOINTS RATE SECONDS PORT QOS`
publishes RATE value messages per second for SECONDS, round-robin over the datapoints, each
stamped with the wall clock (so ingestd's lag metric measures publish-to-commit), and prints
one JSON line: how many it published and how many the broker acknowledged.
"""

from __future__ import annotations

import json
import sys
import time

import paho.mqtt.client as mqtt


def main() -> None:
    prefix, first_id, n_datapoints, rate, seconds, port, qos = sys.argv[1:8]
    first_id, n_datapoints, qos = int(first_id), int(n_datapoints), int(qos)
    rate, seconds = float(rate), float(seconds)
    acked: set[int] = set()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(20)  # Mosquitto's default window
    client.on_publish = lambda _c, _u, mid, _rc, _p: acked.add(mid)
    client.connect("127.0.0.1", int(port))
    client.loop_start()
    topics = [f"{prefix}/messages/{first_id + i}/value" for i in range(n_datapoints)]
    last_stamp = [0] * n_datapoints
    started = time.monotonic()
    sent = 0
    mids: list[int] = []
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            break
        due = int(elapsed * rate) + 1
        while sent < due:
            dp = sent % n_datapoints
            stamp = max(int(time.time() * 1000), last_stamp[dp] + 1)
            last_stamp[dp] = stamp
            payload = b'{"value": %d.25, "timestamp": %d}' % (sent, stamp)
            info = client.publish(topics[dp], payload, qos=qos)
            if qos:
                mids.append(info.mid)
                if len(mids) > 30000:  # paho has 65,535 message ids
                    info_wait_until = time.monotonic() + 60
                    while mids[0] not in acked and time.monotonic() < info_wait_until:
                        time.sleep(0.001)
                    acked.difference_update(mids[:10000])
                    del mids[:10000]
            sent += 1
        time.sleep(min(0.01, max(0.0, (sent / rate) - (time.monotonic() - started))))
    deadline = time.monotonic() + 120
    while qos and not acked.issuperset(mids) and time.monotonic() < deadline:
        time.sleep(0.01)
    client.loop_stop()
    client.disconnect()
    print(
        json.dumps(
            {
                "published": sent,
                "seconds": time.monotonic() - started,
                "unacknowledged": len(set(mids) - acked) if qos else 0,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
