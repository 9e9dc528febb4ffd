"""The demo connector's MQTT side, speaking PROTOCOL.md with paho-mqtt 2.

It announces its datapoints (retained), sends a heartbeat and log messages, follows the
retained datapoint map the service publishes, sends sensor values only on the topics the map
gives, and applies value messages that arrive on its actuator's mapped topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import msgspec
import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from demo.building import Building
from schema.broker_security import configure_client
from schema.protocol import HeartbeatMessage, LogMessage, ValueMessage
from schema.settings import Settings

log = structlog.get_logger("demo")

INFO = 20
WARNING = 30


class DatapointMap(msgspec.Struct):
    """`<C>/datapoint_map`: sensor key -> value topic, actuator value topic -> key."""

    sensor: dict[str, str] = msgspec.field(default_factory=dict)
    actuator: dict[str, str] = msgspec.field(default_factory=dict)


class OutgoingValue(msgspec.Struct):
    value: float | str | bool | None
    timestamp: int


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _as_number(raw: msgspec.Raw) -> float | None:
    """A value message's value as a float: numbers and numeric strings ("22.5") count."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class DemoConnector:
    """One simulated building behind one MQTT connection."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        value_interval_s: float = 5.0,
        heartbeat_interval_s: float = 10.0,
        settings: Settings | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.value_interval_s = value_interval_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.clock = clock
        self.building = Building(clock())
        self._lock = threading.Lock()
        self._map = DatapointMap()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._map_decoder = msgspec.json.Decoder(DatapointMap)
        self._value_decoder = msgspec.json.Decoder(ValueMessage)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{name}-demo-connector",
            protocol=mqtt.MQTTv5,
        )
        if settings is not None:
            configure_client(self.client, settings)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        # Reconnect on its own after a broker restart; the retained map comes back with it.
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and run the publishing loop in a background thread."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._publish_loop, name="demo-publisher")
        self._thread.start()

    def request_stop(self) -> None:
        """Safe to call from a signal handler: the loops notice within half a second."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.client.is_connected():
            info = self.publish_log(INFO, "Demo connector stopping.")
            info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    def wait(self) -> None:
        """Block until stop() is called from another thread or a signal handler."""
        while not self._stop.wait(0.5):
            pass

    @property
    def datapoint_map(self) -> DatapointMap:
        with self._lock:
            return self._map

    # -- topics ---------------------------------------------------------------------------

    def topic(self, suffix: str) -> str:
        return f"{self.name}/{suffix}"

    # -- outgoing -------------------------------------------------------------------------

    def _publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def publish_available_datapoints(self) -> None:
        examples = self.building.examples(self.clock())
        self._publish(
            self.topic("available_datapoints"), msgspec.json.encode(examples), retain=True
        )

    def publish_heartbeat(self) -> None:
        this = self.clock()
        message = HeartbeatMessage(
            this_heartbeats_timestamp=this,
            next_heartbeats_timestamp=this + int(self.heartbeat_interval_s * 1000),
        )
        self._publish(self.topic("heartbeat"), msgspec.json.encode(message))

    def publish_log(self, level: int, msg: str) -> mqtt.MQTTMessageInfo:
        message = LogMessage(timestamp=self.clock(), msg=msg, level=level, emitter="demo")
        return self._publish(self.topic("logs"), msgspec.json.encode(message), retain=True)

    def publish_sensor_values(self, only: set[str] | None = None) -> int:
        """Send every mapped sensor's current value (or those in `only`); return how many."""
        timestamp = self.clock()
        with self._lock:
            self.building.advance(timestamp)
            values = self.building.sensor_values(timestamp)
            sensor_topics = dict(self._map.sensor)
        sent = 0
        for key, topic in sensor_topics.items():
            if key not in values or (only is not None and key not in only):
                continue
            payload = msgspec.json.encode(OutgoingValue(value=values[key], timestamp=timestamp))
            # Connectors publish sensor values retained (PROTOCOL.md).
            self._publish(topic, payload, retain=True)
            sent += 1
        return sent

    def _publish_loop(self) -> None:
        next_heartbeat = 0.0
        next_values = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if self.client.is_connected():
                if now >= next_heartbeat:
                    self.publish_heartbeat()
                    next_heartbeat = now + self.heartbeat_interval_s
                if now >= next_values:
                    self.publish_sensor_values()
                    next_values = now + self.value_interval_s
            self._stop.wait(max(0.01, min(next_heartbeat, next_values) - time.monotonic()))

    # -- incoming -------------------------------------------------------------------------

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties=None) -> None:
        if reason_code.is_failure:
            log.warning("broker_refused", reason=str(reason_code))
            return
        log.info("connected", broker=f"{self.host}:{self.port}", connector=self.name)
        # QoS 2 as the service publishes the map; it is retained, so it arrives right away.
        client.subscribe(self.topic("datapoint_map"), qos=2)
        with self._lock:
            actuator_topics = list(self._map.actuator)
        for topic in actuator_topics:
            client.subscribe(topic, qos=1)
        self.publish_available_datapoints()
        self.publish_log(INFO, "Demo connector started.")

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.topic("datapoint_map"):
            self._apply_map(message.payload)
            return
        with self._lock:
            key = self._map.actuator.get(message.topic)
        if key is not None:
            self._apply_actuator_value(key, message.payload)

    def _apply_map(self, payload: bytes) -> None:
        try:
            new_map = self._map_decoder.decode(payload)
        except msgspec.MsgspecError as error:
            log.warning("bad_datapoint_map", error=str(error))
            self.publish_log(WARNING, f"Ignored a datapoint map that does not parse: {error}")
            return
        with self._lock:
            old_topics = set(self._map.actuator)
            self._map = new_map
        new_topics = set(new_map.actuator)
        for topic in old_topics - new_topics:
            self.client.unsubscribe(topic)
        for topic in new_topics - old_topics:
            self.client.subscribe(topic, qos=1)
        log.info("datapoint_map", sensors=len(new_map.sensor), actuators=len(new_map.actuator))
        self.publish_log(
            INFO,
            f"Datapoint map received: {len(new_map.sensor)} sensors and "
            f"{len(new_map.actuator)} actuators active.",
        )
        # Active sensors get a value at once rather than at the next tick.
        self.publish_sensor_values()

    def _apply_actuator_value(self, key: str, payload: bytes) -> None:
        try:
            message = self._value_decoder.decode(payload)
        except msgspec.MsgspecError as error:
            self.publish_log(WARNING, f"Ignored a value message for {key}: {error}")
            return
        number = _as_number(message.value)
        if number is None:
            self.publish_log(
                WARNING, f"Ignored value {bytes(message.value).decode()} for {key}: not a number."
            )
            return
        with self._lock:
            applied = self.building.set_setpoint(number)
        log.info("actuator_value", key=key, requested=number, applied=applied)
        self.publish_log(INFO, f"{key} set to {applied}.")
        # The thermostat reports its new state right away: the visible answer to the command.
        self.publish_sensor_values(only={"room_setpoint_state"})
