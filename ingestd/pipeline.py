"""The hot path: paho's callback -> a bounded inbox per writer -> batches -> commit -> ack.

The network thread does one dict lookup and one deque append per message. Each writer
thread drains its own partition (messages are partitioned by datapoint id, so one
datapoint's rows stay in order and two writers never upsert the same key), decodes, commits,
and only then acknowledges to the broker. Batches size themselves: whatever arrived while
the previous batch was being committed, up to INGESTD_MAX_BATCH.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from ingestd.batch import Batch
from ingestd.decoding import DECODE_BY_KIND, Rejected
from ingestd.metrics import IngestMetrics
from ingestd.rate_limited_log import RateLimitedLog
from ingestd.routing import Route, unroutable_cause

# (kind, target id, payload, mid, qos)
Item = tuple[str, int, bytes, int, int]
Acker = Callable[[int, int], object]
BatchAcker = Callable[[list[tuple[int, int]]], object]

_IDLE_SLEEP_S = 0.002
_RETRY_BACKOFF_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class Inbox:
    """One deque per writer. deque.append/popleft are atomic, so no lock on the hot path.

    Bounded: when a partition holds `capacity` messages the network thread waits, which
    stops paho reading the socket (QoS 1 traffic is bounded earlier by Receive Maximum).
    """

    def __init__(self, partitions: int, capacity: int) -> None:
        self.partitions = [deque() for _ in range(partitions)]
        self.capacity = capacity
        self.closed = threading.Event()

    def put(self, partition: int, item: Item) -> None:
        queue = self.partitions[partition]
        while len(queue) >= self.capacity and not self.closed.is_set():
            time.sleep(0.001)
        queue.append(item)

    def drain(self, partition: int, max_items: int) -> list[Item]:
        queue = self.partitions[partition]
        popleft = queue.popleft
        items = []
        append = items.append
        for _ in range(min(len(queue), max_items)):
            append(popleft())
        return items

    def depth(self) -> int:
        return sum(len(queue) for queue in self.partitions)


class MessageIntake:
    """paho's on_message: route the message to a writer's inbox, or reject it."""

    def __init__(
        self,
        inbox: Inbox,
        acker: Acker,
        metrics: IngestMetrics,
        rejections: RateLimitedLog,
        max_payload_bytes: int,
    ) -> None:
        self.routes: dict[str, Route] = {}
        self.known_connectors: frozenset[str] = frozenset()
        self.accepting = True
        self._inbox = inbox
        self._ack = acker
        self._metrics = metrics
        self._rejections = rejections
        self._max_payload = max_payload_bytes

    def take(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        """Route one PUBLISH (FastClient's on_publish_received)."""
        if not self.accepting:
            return  # shutting down: left unacknowledged, the broker redelivers it
        route = self.routes.get(topic)
        if route is None:
            cause = unroutable_cause(topic, self.known_connectors)
            self._reject(topic, payload, mid, qos, "unroutable", cause)
            return
        if len(payload) > self._max_payload:
            self._reject(topic, payload, mid, qos, route.kind, "payload_too_large")
            return
        self._inbox.put(route.partition, (route.kind, route.target_id, payload, mid, qos))

    def on_message(self, _client, _userdata, message) -> None:
        """paho's callback, for what FastClient leaves to paho (a PUBLISH with properties)."""
        self.take(message.topic, message.payload, message.mid, message.qos)

    def _reject(self, topic: str, payload: bytes, mid: int, qos: int, kind: str, cause: str):
        self._metrics.rejected.labels(kind, cause).inc()
        self._rejections.warning("message_rejected", cause, topic=topic, bytes=len(payload))
        if qos:
            self._ack(mid, qos)


class PartitionWriter(threading.Thread):
    """Drains one partition of the inbox into the database for as long as the daemon runs."""

    def __init__(
        self,
        partition: int,
        inbox: Inbox,
        store,
        ack_many: BatchAcker,
        metrics: IngestMetrics,
        rejections: RateLimitedLog,
        log,
        max_batch: int,
        stopping: threading.Event,
        aborting: threading.Event,
    ) -> None:
        super().__init__(name=f"writer-{partition}", daemon=True)
        self.partition = partition
        self._inbox = inbox
        self._store = store
        self._ack_many = ack_many
        self._metrics = metrics
        self._rejections = rejections
        self._log = log.bind(writer=partition)
        self._max_batch = max_batch
        self._stopping = stopping
        self._aborting = aborting

    def run(self) -> None:
        while not self._aborting.is_set():
            items = self._inbox.drain(self.partition, self._max_batch)
            if not items:
                if self._stopping.is_set():
                    return
                time.sleep(_IDLE_SLEEP_S)
                continue
            if not self.write_items(items):
                return  # aborted while the database was away: nothing acknowledged

    def write_items(self, items: list[Item]) -> bool:
        """Decode, commit and acknowledge `items`; False if aborted before the commit."""
        batch = Batch()
        decoded: list[tuple[str, tuple]] = []
        counts: dict[str, int] = {}
        for kind, target_id, payload, _mid, _qos in items:
            counts[kind] = counts.get(kind, 0) + 1
            try:
                row = DECODE_BY_KIND[kind](target_id, payload)
            except Rejected as rejected:
                self._metrics.rejected.labels(kind, rejected.cause).inc()
                self._rejections.warning(
                    "message_rejected",
                    rejected.cause,
                    kind=kind,
                    id=target_id,
                    detail=rejected.detail[:300],
                )
                continue
            batch.add(kind, row)
            decoded.append((kind, row))
        for kind, count in counts.items():
            self._metrics.received.labels(kind).inc(count)
        if len(batch) and not self._commit(batch, decoded):
            return False
        stored: dict[str, int] = {}
        for kind, _row in decoded:
            stored[kind] = stored.get(kind, 0) + 1
        for kind, count in stored.items():
            self._metrics.stored.labels(kind).inc(count)
        acks = [(item[3], item[4]) for item in items if item[4]]
        if acks:
            self._ack_many(acks)
        return True

    def _commit(self, batch: Batch, decoded: list[tuple[str, tuple]]) -> bool:
        attempt = 0
        started = time.perf_counter()
        while True:
            try:
                self._store.write(batch)
                break
            except self._store.transient_errors as error:
                self._metrics.db_errors.labels("transient").inc()
                delay = _RETRY_BACKOFF_S[min(attempt, len(_RETRY_BACKOFF_S) - 1)]
                if attempt == 0 or attempt % 10 == 0:
                    self._log.warning(
                        "database_unavailable",
                        error=str(error).strip()[:300],
                        attempt=attempt,
                        retry_in_s=delay,
                        held=len(batch),
                    )
                attempt += 1
                if self._aborting.wait(delay):
                    return False
            except Exception as error:
                self._metrics.db_errors.labels("permanent").inc()
                self._log.error("batch_refused", error=str(error).strip()[:300], rows=len(batch))
                return self._commit_one_by_one(decoded)
        finished = time.perf_counter()
        self._metrics.batch_size.observe(len(batch))
        self._metrics.batch_seconds.observe(finished - started)
        newest = batch.newest_timestamp()
        if newest is not None:
            self._metrics.lag_seconds.observe(max(0.0, time.time() - newest / 1000))
        if attempt:
            self._log.info("database_back", attempts=attempt, rows=len(batch))
        return True

    def _commit_one_by_one(self, decoded: list[tuple[str, tuple]]) -> bool:
        """After a permanent error, store every row that can be stored and count the rest."""
        for kind, row in decoded:
            single = Batch()
            single.add(kind, row)
            while True:
                try:
                    self._store.write(single)
                    break
                except self._store.transient_errors:
                    if self._aborting.wait(1.0):
                        return False
                except Exception as error:
                    self._metrics.rejected.labels(kind, "database_refused").inc()
                    self._rejections.warning(
                        "message_rejected",
                        "database_refused",
                        kind=kind,
                        error=str(error).strip()[:300],
                    )
                    break
        return True
