"""Which topics ingestd subscribes to, and where each message on them goes.

Built from the database's view of connectors and active datapoints (see control_plane), then
swapped in whole: the MQTT network thread only ever does one dict lookup per message.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from schema.topics import SCHEDULE, SETPOINT, VALUE, datapoint_topic

# Kinds of message and the partition key each is spread by.
LOGS, HEARTBEAT, AVAILABLE = "logs", "heartbeat", "available_datapoints"
CONNECTOR_KINDS = (LOGS, HEARTBEAT, AVAILABLE)
_SHARED_KINDS = frozenset((VALUE, SETPOINT, SCHEDULE, LOGS))


class Route(msgspec.Struct, frozen=True):
    """Where a message of one topic goes: the kind, the row id it belongs to, the writer."""

    kind: str
    target_id: int  # datapoint id for value/setpoint/schedule, connector id otherwise
    partition: int


class ActiveDatapoint(msgspec.Struct, frozen=True):
    id: int
    connector_id: int
    connector_name: str
    key_in_connector: str
    type: str


class ConnectorRow(msgspec.Struct, frozen=True):
    id: int
    name: str


def build_routes(
    connectors: Iterable[ConnectorRow],
    active_datapoints: Iterable[ActiveDatapoint],
    partitions: int,
) -> dict[str, Route]:
    """topic -> Route for every topic ingestd subscribes to."""
    routes: dict[str, Route] = {}
    for connector in connectors:
        partition = connector.id % partitions
        for kind in CONNECTOR_KINDS:
            routes[f"{connector.name}/{kind}"] = Route(kind, connector.id, partition)
    for dp in active_datapoints:
        partition = dp.id % partitions
        kinds = (VALUE,) if dp.type == "sensor" else (VALUE, SETPOINT, SCHEDULE)
        for kind in kinds:
            routes[datapoint_topic(dp.connector_name, dp.id, kind)] = Route(kind, dp.id, partition)
    return routes


def subscription_topic(topic: str, route: Route, share_group: str | None) -> str:
    """The filter to subscribe with when several ingestd instances split the load.

    Datapoint messages and logs go through the shared subscription: each is stored by one
    instance (a log line has no key that would merge two copies). Heartbeats and available
    datapoints stay ordinary subscriptions: every instance gets them, and their upserts
    make the copies harmless; they must not be shared, because a shared subscription gets
    no retained messages and connectors publish their available datapoints retained.
    (The retained last log line of a connector is not delivered to a shared subscription.)
    """
    if share_group and route.kind in _SHARED_KINDS:
        return f"$share/{share_group}/{topic}"
    return topic


def unroutable_cause(topic: str, known_connectors: frozenset[str]) -> str:
    """Why a message on `topic` has no route, as a metric label."""
    connector, _, rest = topic.partition("/")
    if connector not in known_connectors:
        return "unknown_connector"
    if rest.startswith("messages/"):
        return "inactive_datapoint"
    return "unknown_topic"
