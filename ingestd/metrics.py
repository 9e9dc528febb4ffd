"""ingestd's Prometheus metrics, on a registry of its own (served on INGESTD_METRICS_PORT)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

_BATCH_SIZES = (1, 10, 50, 100, 500, 1000, 2000, 5000, 10000)
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # process_resident_memory_bytes and friends: a registry of our own gets none by itself.
        ProcessCollector(registry=r)
        self.received = Counter(
            "ingestd_messages_received", "MQTT messages taken in, by kind", ["kind"], registry=r
        )
        self.stored = Counter(
            "ingestd_messages_stored",
            "Messages committed to the database, by kind",
            ["kind"],
            registry=r,
        )
        self.rejected = Counter(
            "ingestd_messages_rejected",
            "Messages that could not be stored, by kind and cause",
            ["kind", "cause"],
            registry=r,
        )
        self.batch_size = Histogram(
            "ingestd_batch_size", "Messages per committed batch", buckets=_BATCH_SIZES, registry=r
        )
        self.batch_seconds = Histogram(
            "ingestd_batch_seconds",
            "Time to write and commit one batch",
            buckets=_SECONDS,
            registry=r,
        )
        self.lag_seconds = Histogram(
            "ingestd_lag_seconds",
            "From the newest message timestamp of a batch to its commit",
            buckets=_SECONDS,
            registry=r,
        )
        self.db_errors = Counter(
            "ingestd_database_errors",
            "Failed batch writes; transient ones are retried",
            ["type"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "ingestd_queue_depth", "Messages received and not yet committed", registry=r
        )
        self.mqtt_connected = Gauge(
            "ingestd_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.mqtt_fast_client = Gauge(
            "ingestd_mqtt_fast_client",
            "1 when the fast MQTT path passed its start-up check of paho's internals; 0 when "
            "ingestd fell back to the stock paho client (a warning names the reason)",
            registry=r,
        )
        self.database_connected = Gauge(
            "ingestd_database_connected",
            "1 while the database answers (polled 4 times a second by the control plane)",
            registry=r,
        )
        self.subscribed = Gauge(
            "ingestd_subscribed", "1 while connected with every subscription granted", registry=r
        )
        self.ready = Gauge(
            "ingestd_ready",
            "1 while every writer, the control plane and the MQTT network loop run; 0 "
            "before start, while stopping, and once one of them died (ingestd then exits 3)",
            registry=r,
        )
        self.control_plane_syncs = Counter(
            "ingestd_control_plane_syncs",
            "Reloads of connectors and active datapoints",
            registry=r,
        )

        self.refused_names = Gauge(
            "ingestd_refused_names",
            "Connectors and controllers left out because the broker refuses their names",
            ["kind"],
            registry=r,
        )

    def totals(self) -> dict[str, int]:
        """Messages received, stored and rejected since start, over every kind and cause."""
        totals = {}
        for name, counter in (
            ("received", self.received),
            ("stored", self.stored),
            ("rejected", self.rejected),
        ):
            totals[name] = int(
                sum(
                    sample.value
                    for metric in counter.collect()
                    for sample in metric.samples
                    if sample.name.endswith("_total")
                )
            )
        return totals

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)
