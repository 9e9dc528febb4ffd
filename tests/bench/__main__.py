"""`make bench`: every benchmark of the project; the last line printed is one JSON object.

The MQTT benchmarks use a private Mosquitto started with the settings deploy/ recommends
(persistence, a large max_queued_messages, max_inflight_messages 1000): with Mosquitto's
default queue of 1,000 messages a subscriber slower than its publisher loses QoS 0 messages
at the broker, the bare paho baseline included, and the figures would measure the broker's
queue, not the service. The QoS 1 figures are also measured on a second broker with
Mosquitto's default max_inflight_messages (tests.bench.brokers).

A figure is only printed as one if its run passed the checks of tests.bench.checks: the
command exits 1 and names every reason on stderr (and under "problems" in the JSON) when a
message was lost (drain runs included), a run did not finish, a subscriber did not receive
every message, ingestd stored a duplicate or a wrong value, a cgroup cap never applied, a
readapi answer was short, or a benchmark failed outright.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable

from tests.bench.brokers import bench_brokers


def collect(results: dict, name: str, bench: Callable[[], dict]) -> None:
    """Run one benchmark into results; a failure becomes a problem, the others still run."""
    try:
        found = bench()
    except Exception as error:
        traceback.print_exc()
        results["problems"].append(f"{name} failed: {error!r}")
        return
    results["problems"] += found.pop("problems", [])
    results.update(found)


def verdict(results: dict) -> int:
    """Exit status: 1 when any figure cannot be trusted, each reason on stderr."""
    results["lost"] = results.get("lost", 0) + sum(
        value
        for key, value in results.items()
        if key.startswith("drain_") and key.endswith("_lost")
    )
    if results["lost"] and not any("lost" in problem for problem in results["problems"]):
        results["problems"].append(f"{results['lost']} messages lost")
    for problem in results["problems"]:
        print(f"bench: {problem}", file=sys.stderr)
    return 1 if results["problems"] else 0


def main() -> int:
    results: dict = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "problems": [],
    }
    with bench_brokers() as ports:
        os.environ["BENCH_MQTT_PORT"] = str(ports["recommended"])
        os.environ["BENCH_DEFAULT_MQTT_PORT"] = str(ports["default"])
        from tests.bench import drain_bench, ingest_bench, readapi_bench

        collect(results, "ingest benchmark", ingest_bench.run)
        collect(results, "drain benchmark", drain_bench.run)
        collect(results, "readapi benchmark", readapi_bench.run)
    status = verdict(results)
    print(json.dumps(results))
    return status


if __name__ == "__main__":
    sys.exit(main())
