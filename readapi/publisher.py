"""The MQTT side of readapi: it publishes what users send, nothing else."""

from __future__ import annotations

import os
import secrets
import threading

import paho.mqtt.client as mqtt
import structlog

from schema.broker_security import configure_client
from schema.settings import Settings

log = structlog.get_logger("readapi.mqtt")


class BrokerUnavailable(RuntimeError):
    pass


class Publisher:
    """One paho client per worker process, connected in the background, reconnecting."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.mqtt_broker_host
        self.port = settings.mqtt_broker_port
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"bemcom-readapi-{os.getpid()}-{secrets.token_hex(3)}",
            clean_session=True,
        )
        configure_client(self.client, settings)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("mqtt_connect_refused", reason=str(reason_code))
            return
        self.connected.set()
        log.info("mqtt_connected", host=self.host, port=self.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        log.warning("mqtt_disconnected", reason=str(reason_code))

    def start(self, wait_seconds: float = 3.0) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(wait_seconds):
            log.warning("mqtt_not_connected_yet", host=self.host, port=self.port)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def is_connected(self) -> bool:
        return self.connected.is_set() and self.client.is_connected()

    def publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False, timeout: float = 5.0
    ) -> None:
        """Publish; for QoS > 0 wait until the broker has it. Raises BrokerUnavailable."""
        if not self.is_connected():
            raise BrokerUnavailable(f"not connected to {self.host}:{self.port}")
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BrokerUnavailable(mqtt.error_string(info.rc))
        if qos > 0:
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as error:
                raise BrokerUnavailable(str(error)) from None
            if not info.is_published():
                raise BrokerUnavailable(f"the broker did not acknowledge within {timeout} s")
