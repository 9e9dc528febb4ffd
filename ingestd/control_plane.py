"""Follows the database's connectors, active datapoints and controllers.

Triggers bump control_plane_version on every change that matters here (schema migration
0001), so polling one row four times a second notices a change made anywhere (REST, admin
UI, psql) well within a second. On a change: new routes, subscription changes, and the
datapoint maps and controlled datapoints that changed are republished (retained, QoS 2).

A connector or controller whose name the broker refuses (stored before names were checked,
or by hand) is left out, with a warning and the ingestd_refused_names gauge: one SUBSCRIBE
or PUBLISH to its topics would get ingestd disconnected, again on every reconnect, and
ingest would stop for every connector.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import Engine, select

from ingestd.announcements import (
    ControlledPair,
    controlled_datapoints,
    datapoint_map,
    encode,
)
from ingestd.metrics import IngestMetrics
from ingestd.pipeline import MessageIntake
from ingestd.routing import ActiveDatapoint, ConnectorRow, build_routes, subscription_topic
from schema import tables as t
from schema.topics import (
    EMPTY_DATAPOINT_MAP,
    broker_refusal,
    controlled_datapoints_topic,
    datapoint_map_topic,
)

POLL_INTERVAL_S = 0.25
SUBSCRIBE_CHUNK = 500
SUBSCRIPTION_QOS = 1


class ControlState(msgspec.Struct, frozen=True):
    """What the control plane subscribes to and announces, as read from the database."""

    connectors: list[ConnectorRow]
    active_datapoints: list[ActiveDatapoint]
    controllers: list[str]
    pairs: list[ControlledPair]


def load_state(engine: Engine) -> ControlState:
    sensor = t.datapoint.alias("sensor")
    actuator = t.datapoint.alias("actuator")
    sensor_connector = t.connector.alias("sensor_connector")
    actuator_connector = t.connector.alias("actuator_connector")
    with engine.connect() as connection:
        connectors = [
            ConnectorRow(id=row.id, name=row.name)
            for row in connection.execute(select(t.connector.c.id, t.connector.c.name))
        ]
        active = [
            ActiveDatapoint(
                id=row.id,
                connector_id=row.connector_id,
                connector_name=row.name,
                key_in_connector=row.key_in_connector,
                type=row.type,
            )
            for row in connection.execute(
                select(
                    t.datapoint.c.id,
                    t.datapoint.c.connector_id,
                    t.connector.c.name,
                    t.datapoint.c.key_in_connector,
                    t.datapoint.c.type,
                )
                .join(t.connector, t.connector.c.id == t.datapoint.c.connector_id)
                .where(t.datapoint.c.is_active.is_(True))
            )
        ]
        controllers = list(connection.execute(select(t.controller.c.name)).scalars())
        pairs = [
            ControlledPair(
                controller_name=row.controller_name,
                sensor_connector=row.sensor_connector,
                sensor_id=row.sensor_id,
                actuator_connector=row.actuator_connector,
                actuator_id=row.actuator_id,
            )
            for row in connection.execute(
                select(
                    t.controller.c.name.label("controller_name"),
                    sensor_connector.c.name.label("sensor_connector"),
                    sensor.c.id.label("sensor_id"),
                    actuator_connector.c.name.label("actuator_connector"),
                    actuator.c.id.label("actuator_id"),
                )
                .select_from(t.controlled_datapoint)
                .join(t.controller, t.controller.c.id == t.controlled_datapoint.c.controller_id)
                .join(sensor, sensor.c.id == t.controlled_datapoint.c.sensor_datapoint_id)
                .join(actuator, actuator.c.id == t.controlled_datapoint.c.actuator_datapoint_id)
                .join(sensor_connector, sensor_connector.c.id == sensor.c.connector_id)
                .join(actuator_connector, actuator_connector.c.id == actuator.c.connector_id)
                .where(t.controlled_datapoint.c.is_active.is_(True))
            )
        ]
    return ControlState(connectors, active, controllers, pairs)


class Refused(msgspec.Struct, frozen=True):
    """A name left out of the control plane, and why the broker refuses it."""

    kind: str  # "connector" or "controller"
    name: str
    problem: str


def without_refused_names(state: ControlState) -> tuple[ControlState, list[Refused]]:
    """`state` without the connectors and controllers whose names the broker refuses, their
    datapoints, and the controlled pairs that point at them; and what was left out."""
    refused = [
        Refused("connector", c.name, problem)
        for c in state.connectors
        if (problem := broker_refusal(c.name))
    ]
    refused += [
        Refused("controller", name, problem)
        for name in state.controllers
        if (problem := broker_refusal(name))
    ]
    if not refused:
        return state, refused
    bad = {r.name for r in refused}
    kept = ControlState(
        [c for c in state.connectors if c.name not in bad],
        [dp for dp in state.active_datapoints if dp.connector_name not in bad],
        [name for name in state.controllers if name not in bad],
        [
            p
            for p in state.pairs
            if not {p.controller_name, p.sensor_connector, p.actuator_connector} & bad
        ],
    )
    return kept, refused


def read_version(engine: Engine) -> int | None:
    with engine.connect() as connection:
        return connection.execute(
            select(t.control_plane_version.c.version).where(t.control_plane_version.c.id == 1)
        ).scalar_one_or_none()


def announcements(state: ControlState) -> dict[str, bytes]:
    """topic -> payload of every retained message this state implies."""
    by_connector: dict[str, list[ActiveDatapoint]] = defaultdict(list)
    for dp in state.active_datapoints:
        by_connector[dp.connector_name].append(dp)
    messages = {
        datapoint_map_topic(c.name): encode(datapoint_map(by_connector.get(c.name, [])))
        for c in state.connectors
    }
    by_controller: dict[str, list[ControlledPair]] = defaultdict(list)
    for pair in state.pairs:
        by_controller[pair.controller_name].append(pair)
    for name in state.controllers:
        messages[controlled_datapoints_topic(name)] = encode(
            controlled_datapoints(by_controller.get(name, []))
        )
    return messages


def withdrawn(previous: dict[str, bytes], current: dict[str, bytes]) -> dict[str, bytes]:
    """What to publish for topics that are gone: connectors deleted or renamed get the
    empty map, so they stop sending; controllers get an empty list."""
    empty_map = encode(EMPTY_DATAPOINT_MAP)
    return {
        topic: (empty_map if topic.endswith("/datapoint_map") else b"[]")
        for topic in previous.keys() - current.keys()
    }


class ControlPlane:
    def __init__(
        self,
        engine: Engine,
        client: mqtt.Client,
        intake: MessageIntake,
        partitions: int,
        share_group: str | None,
        metrics: IngestMetrics,
        log,
    ) -> None:
        self._engine = engine
        self._client = client
        self._intake = intake
        self._partitions = partitions
        self._share_group = share_group
        self._metrics = metrics
        self._log = log.bind(component="control_plane")
        self._lock = threading.Lock()
        self._subscriptions: set[str] = set()
        self._announced: dict[str, bytes] = {}
        self._version: int | None = None
        self._connected = False
        self._pending_subscriptions: set[int] = set()
        self._refused: set[Refused] = set()
        self.subscribed = threading.Event()

    def sync(self) -> None:
        """Reload from the database and apply what changed."""
        with self._lock:
            version = read_version(self._engine)
            state, refused = without_refused_names(load_state(self._engine))
            self._report_refused(refused)
            routes = build_routes(state.connectors, state.active_datapoints, self._partitions)
            # Routes first: retained messages arrive as soon as a subscription is granted.
            self._intake.routes = routes
            self._intake.known_connectors = frozenset(c.name for c in state.connectors)
            wanted = {
                subscription_topic(topic, r, self._share_group) for topic, r in routes.items()
            }
            added, removed = wanted - self._subscriptions, self._subscriptions - wanted
            self._subscriptions = wanted
            messages = announcements(state)
            changed = {
                topic: payload
                for topic, payload in {**withdrawn(self._announced, messages), **messages}.items()
                if self._announced.get(topic) != payload
            }
            self._announced = messages
            self._version = version
            self._metrics.control_plane_syncs.inc()
            self._metrics.database_connected.set(1)
            if self._connected:
                self._subscribe(sorted(added), retained=True)
                self._unsubscribe(sorted(removed))
                self._publish(changed)
            self._log.info(
                "control_plane_synced",
                version=version,
                connectors=len(state.connectors),
                active_datapoints=len(state.active_datapoints),
                subscribed=len(added),
                unsubscribed=len(removed),
                republished=len(changed) if self._connected else 0,
            )

    def _report_refused(self, refused: list[Refused]) -> None:
        for kind in ("connector", "controller"):
            self._metrics.refused_names.labels(kind).set(sum(r.kind == kind for r in refused))
        for entry in sorted(set(refused) - self._refused, key=lambda r: (r.kind, r.name)):
            self._log.warning(
                "name_refused_by_broker",
                kind=entry.kind,
                name=entry.name,
                problem=entry.problem,
                action=f"left out until the {entry.kind} is renamed or deleted",
            )
        self._refused = set(refused)

    def on_connect(self, client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self._log.warning("mqtt_connect_refused", reason=str(reason_code))
            return
        self._metrics.mqtt_connected.set(1)
        with self._lock:
            self._connected = True
            # A resumed session still holds the subscriptions; asking again for retained
            # messages would replay every retained value on each reconnect.
            self._pending_subscriptions.clear()
            self._subscribe(sorted(self._subscriptions), retained=not flags.session_present)
            if not self._pending_subscriptions:
                self.subscribed.set()
                self._metrics.subscribed.set(1)
            # Every map again: heals a broker that lost its retained messages.
            self._publish(self._announced)
        self._log.info(
            "mqtt_connected",
            session_present=flags.session_present,
            subscriptions=len(self._subscriptions),
        )

    def on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self._metrics.mqtt_connected.set(0)
        self._metrics.subscribed.set(0)
        self.subscribed.clear()
        with self._lock:
            self._connected = False
        self._log.warning("mqtt_disconnected", reason=str(reason_code))

    def run(self, stopping: threading.Event) -> None:
        """Poll the change counter until `stopping` is set."""
        failing = False
        while not stopping.wait(POLL_INTERVAL_S):
            try:
                if read_version(self._engine) != self._version:
                    self.sync()
                self._metrics.database_connected.set(1)
                if failing:
                    self._log.info("control_plane_database_back")
                failing = False
            except Exception as error:
                self._metrics.database_connected.set(0)
                if not failing:
                    self._log.warning("control_plane_database_error", error=str(error)[:300])
                failing = True

    def _subscribe(self, topics: list[str], retained: bool) -> None:
        # Retain handling 0 sends retained messages, 1 only for a subscription that is new.
        options = SubscribeOptions(qos=SUBSCRIPTION_QOS, retainHandling=0 if retained else 1)
        for start in range(0, len(topics), SUBSCRIBE_CHUNK):
            chunk = topics[start : start + SUBSCRIBE_CHUNK]
            result, mid = self._client.subscribe([(topic, options) for topic in chunk])
            if result == mqtt.MQTT_ERR_SUCCESS:
                self._pending_subscriptions.add(mid)
                self.subscribed.clear()
                self._metrics.subscribed.set(0)

    def on_subscribe(self, _client, _userdata, mid, reason_codes, _properties) -> None:
        failed = [code for code in reason_codes if code.is_failure]
        if failed:
            self._log.error("mqtt_subscribe_refused", reasons=sorted({str(c) for c in failed}))
        with self._lock:
            self._pending_subscriptions.discard(mid)
            if not self._pending_subscriptions:
                self.subscribed.set()
                self._metrics.subscribed.set(1)

    def _unsubscribe(self, topics: list[str]) -> None:
        for start in range(0, len(topics), SUBSCRIBE_CHUNK):
            self._client.unsubscribe(topics[start : start + SUBSCRIBE_CHUNK])

    def _publish(self, messages: dict[str, bytes]) -> None:
        for topic, payload in messages.items():
            self._client.publish(topic, payload, qos=2, retain=True)
