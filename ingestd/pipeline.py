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
from typing import NamedTuple

from ingestd.batch import Batch, isolation_units
from ingestd.decoding import Rejected, decode_message
from ingestd.metrics import IngestMetrics
from ingestd.rate_limited_log import RateLimitedLog
from ingestd.routing import AVAILABLE, Route, unroutable_cause
from ingestd.store import Store


class Item(NamedTuple):
    """A received message waiting in the inbox for its partition's writer."""

    kind: str
    target_id: int
    payload: bytes
    mid: int  # the MQTT packet id to acknowledge after the commit
    qos: int


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
        """Route one PUBLISH (FastClient's on_publish_received).

        Runs on the network thread, where an exception would end the broker connection for
        every message: whatever goes wrong with this one is counted against it alone.
        """
        try:
            self._take(topic, payload, mid, qos)
        except Exception as error:
            self._metrics.rejected.labels("unroutable", "intake_error").inc()
            self._rejections.warning(
                "message_rejected", "intake_error", topic=repr(topic)[:300], error=repr(error)
            )
            if qos:
                self._ack(mid, qos)

    def _take(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
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
        self._inbox.put(route.partition, Item(route.kind, route.target_id, payload, mid, qos))

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
        store: Store,
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
        """Decode, commit and acknowledge `items`; False if aborted before the commit.

        A message that cannot be decoded or stored is counted with its cause and
        acknowledged; it never holds up the others or stops this writer.
        """
        batch = Batch()
        decoded: list[tuple[str, tuple]] = []
        counts: dict[str, int] = {}
        for kind, target_id, payload, _mid, _qos in items:
            counts[kind] = counts.get(kind, 0) + 1
            try:
                row = decode_message(kind, target_id, payload)
            except Rejected as rejected:
                self._reject(kind, rejected.cause, id=target_id, detail=rejected.detail[:300])
                continue
            batch.add(kind, row)
            decoded.append((kind, row))
        for kind, count in counts.items():
            self._metrics.received.labels(kind).inc(count)
        refused: set[int] = set()
        if len(batch):
            outcome = self._commit(batch, decoded)
            if outcome is None:
                return False
            refused = outcome
        stored: dict[str, int] = {}
        for index, (kind, _row) in enumerate(decoded):
            if index not in refused:
                stored[kind] = stored.get(kind, 0) + 1
        for kind, count in stored.items():
            self._metrics.stored.labels(kind).inc(count)
        acks = [(item.mid, item.qos) for item in items if item.qos]
        if acks:
            self._ack_many(acks)
        return True

    def _reject(self, kind: str, cause: str, **fields) -> None:
        self._metrics.rejected.labels(kind, cause).inc()
        self._rejections.warning("message_rejected", cause, kind=kind, **fields)

    def _retry_wait(self, error: Exception, attempt: int, held: int) -> bool:
        """Count a transient error and wait before the next attempt; False if aborted."""
        self._metrics.db_errors.labels("transient").inc()
        delay = _RETRY_BACKOFF_S[min(attempt, len(_RETRY_BACKOFF_S) - 1)]
        if attempt == 0 or attempt % 10 == 0:
            self._log.warning(
                "database_unavailable",
                error=str(error).strip()[:300],
                attempt=attempt,
                retry_in_s=delay,
                held=held,
            )
        return not self._aborting.wait(delay)

    def _commit(self, batch: Batch, decoded: list[tuple[str, tuple]]) -> set[int] | None:
        """Commit the batch; the indexes in `decoded` of messages the database refused, or
        None if aborted while the database was away (nothing committed or acknowledged)."""
        attempt = 0
        started = time.perf_counter()
        refused: set[int] = set()
        while True:
            try:
                self._store.write(batch)
                break
            except Exception as error:
                verdict = self._store.classify(error)
                if verdict.transient:
                    if not self._retry_wait(error, attempt, len(batch)):
                        return None
                    attempt += 1
                    continue
                self._metrics.db_errors.labels("permanent").inc()
                self._log.error(
                    "batch_refused",
                    cause=verdict.cause,
                    error=str(error).strip()[:300],
                    rows=len(batch),
                )
                isolated = self._isolate(decoded)
                if isolated is None:
                    return None
                refused = isolated
                break
        finished = time.perf_counter()
        self._metrics.batch_size.observe(len(batch))
        self._metrics.batch_seconds.observe(finished - started)
        newest = batch.newest_timestamp()
        if newest is not None:
            self._metrics.lag_seconds.observe(max(0.0, time.time() - newest / 1000))
        if attempt:
            self._log.info("database_back", attempts=attempt, rows=len(batch))
        return refused

    def _isolate(self, decoded: list[tuple[str, tuple]]) -> set[int] | None:
        """After a permanent error: store every row the database takes, in one transaction
        with a savepoint per sub-batch (halved until the refused rows stand alone), and
        count the rest with the database's cause. An announcement is split into its entries
        first, so one bad key does not cost the connector its other datapoints."""
        units, owners = isolation_units(decoded)
        attempt = 0
        while True:
            try:
                refused_units = self._store.write_isolating(units)
                break
            except Exception as error:
                if not self._store.classify(error).transient:
                    # Outside every sub-batch (BEGIN, COMMIT): no row's fault. The writer
                    # dies with nothing acknowledged, and ingestd exits 3 to start afresh.
                    raise
                if not self._retry_wait(error, attempt, len(units)):
                    return None
                attempt += 1
        refused_indexes = {index for index, _error in refused_units}
        for unit_index, error in refused_units:
            kind, row = units[unit_index]
            self._reject(
                kind,
                self._store.classify(error).cause,
                id=row[0],
                error=str(error).strip()[:300],
                **({"key": row[1][0][0][:80]} if kind == AVAILABLE else {}),
            )
        # A message counts as stored if any of its units was (an announcement's entries).
        taken = {owners[i] for i in range(len(units)) if i not in refused_indexes}
        return {owners[i] for i in refused_indexes} - taken
