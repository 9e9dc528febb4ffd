"""The two private Mosquitto brokers the MQTT benchmarks run against.

- "recommended": the settings of deploy/mosquitto.conf that bear on throughput
  (max_inflight_messages, max_queued_messages, max_queued_bytes), read from that file.
- "default": Mosquitto's default max_inflight_messages (20), which is also the window its
  CONNACK grants every publisher. Its queue is kept large as in the recommended one: with
  the default queue of 1,000 a subscriber slower than its publisher loses messages at the
  broker, and the figure would measure losses rather than the window.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.support.broker import MosquittoProcess

RECOMMENDED_CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto.conf"
THROUGHPUT_SETTINGS = ("max_inflight_messages", "max_queued_messages", "max_queued_bytes")


def recommended_settings() -> str:
    lines = [
        line.strip()
        for line in RECOMMENDED_CONF.read_text().splitlines()
        if line.split(" ", 1)[0] in THROUGHPUT_SETTINGS
    ]
    return "".join(line + "\n" for line in lines)


CONFIGURATIONS = {
    "recommended": recommended_settings(),
    "default": "max_inflight_messages 20\n",
}


@contextmanager
def bench_brokers() -> Iterator[dict[str, int]]:
    """Start one broker per configuration; yields configuration name -> port."""
    with ExitStack() as stack:
        ports = {}
        for name, extra in CONFIGURATIONS.items():
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bemcom-{name}-"))
            broker = MosquittoProcess(Path(directory), extra=extra)
            broker.start()
            stack.callback(broker.stop)
            ports[name] = broker.port
        yield ports
