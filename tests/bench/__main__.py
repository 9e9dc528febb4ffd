"""`make bench`: every benchmark of the project; the last line printed is one JSON object.

The MQTT benchmarks use a private Mosquitto started with the settings deploy/ recommends
(persistence, a large max_queued_messages): with Mosquitto's default queue of 1,000 messages
a subscriber slower than its publisher loses QoS 0 messages at the broker, the bare paho
baseline included, and the figures would measure the broker's queue, not the service.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.support.broker import MosquittoProcess


def main() -> int:
    results: dict = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="bemcom-bench-broker-") as directory:
        broker = MosquittoProcess(Path(directory))
        broker.start()
        os.environ["BENCH_MQTT_PORT"] = str(broker.port)
        try:
            from tests.bench import drain_bench, ingest_bench

            results.update(ingest_bench.run())
            results.update(drain_bench.run())
            try:
                from tests.bench import readapi_bench
            except ImportError as error:
                print(f"readapi benchmark not available: {error}", file=sys.stderr)
            else:
                results.update(readapi_bench.run())
        finally:
            broker.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
