"""Helpers for ingestd tests: seed the database, publish like a connector, wait for rows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager

import paho.mqtt.client as mqtt
from sqlalchemy import Engine, insert, select, text

from schema import tables as t


def now_ms() -> int:
    return int(time.time() * 1000)


def create_connector(engine: Engine, name: str) -> int:
    with engine.begin() as connection:
        return connection.execute(
            insert(t.connector).values(name=name, date_added=now_ms()).returning(t.connector.c.id)
        ).scalar_one()


def create_datapoints(
    engine: Engine, connector_id: int, keys: list[str], kind: str = "sensor", active: bool = True
) -> list[int]:
    with engine.begin() as connection:
        return [
            connection.execute(
                insert(t.datapoint)
                .values(
                    connector_id=connector_id,
                    key_in_connector=key,
                    type=kind,
                    is_active=active,
                    data_format="unknown",
                    description="",
                    unit="",
                )
                .returning(t.datapoint.c.id)
            ).scalar_one()
            for key in keys
        ]


def set_active(engine: Engine, datapoint_ids: list[int], active: bool) -> None:
    with engine.begin() as connection:
        connection.execute(
            t.datapoint.update().where(t.datapoint.c.id.in_(datapoint_ids)).values(is_active=active)
        )


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05):
    """Poll until `predicate()` is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


def count_rows(engine: Engine, table, **where) -> int:
    query = select(text("count(*)")).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def value_rows(engine: Engine, datapoint_id: int) -> list[tuple[int, float | None, str | None]]:
    table = t.datapoint_value
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(table.c.time, table.c.value_num, table.c.value_raw)
                .where(table.c.datapoint_id == datapoint_id)
                .order_by(table.c.time)
            )
        ]


@contextmanager
def publisher(host: str, port: int, client_id: str = ""):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(20)  # within Mosquitto's default window
    client.connect(host, port)
    client.loop_start()
    try:
        yield client
    finally:
        client.loop_stop()
        client.disconnect()


def publish_json(client: mqtt.Client, topic: str, document, qos: int = 1, retain=False):
    payload = document if isinstance(document, bytes) else json.dumps(document).encode()
    info = client.publish(topic, payload, qos=qos, retain=retain)
    info.wait_for_publish(10)
    return info


class Collector:
    """A subscriber that keeps what arrives on some topics (to check what ingestd publishes)."""

    def __init__(self, host: str, port: int, topics: list[str]) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, message: self.messages.append(message)
        self.client.connect(host, port)
        for topic in topics:
            self.client.subscribe(topic, qos=2)
        self.client.loop_start()

    def payloads(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def metric_total(daemon, name: str, **labels: str) -> float:
    """The sum of an in-process ingestd counter's samples whose labels match `labels`."""
    return sum(
        sample.value
        for metric in daemon.metrics.registry.collect()
        if metric.name == name
        for sample in metric.samples
        if sample.name.endswith("_total")
        and all(sample.labels.get(k) == v for k, v in labels.items())
    )
