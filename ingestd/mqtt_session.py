"""The broker connection: MQTT v5, a persistent session, and acknowledgement after commit.

- clean_start=False with a long session expiry: what arrives while ingestd is down or
  restarting waits at the broker.
- manual acknowledgement: the writers ack a message only once it is committed.
- Receive Maximum: how many unacknowledged messages the broker may have in flight to us.
  With MQTT 3.1.1 Mosquitto allows 20, which would cap throughput at 20 messages per
  commit; v5 lets the client choose (up to 65,535).
"""

from __future__ import annotations

import threading
from importlib.metadata import version

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingestd.fast_client import FastClient, StockClient, select_client_class
from ingestd.metrics import IngestMetrics
from schema.broker_security import configure_client
from schema.settings import Settings

SESSION_EXPIRY_S = 30 * 24 * 3600
KEEPALIVE_S = 30


def create_client(
    settings: Settings, metrics: IngestMetrics | None = None
) -> FastClient | StockClient:
    """The fast client when paho's internals are as it expects; stock paho, said loudly,
    when a paho release changed one of them."""
    client_class, problem = select_client_class()
    if problem:
        structlog.get_logger("ingestd").warning(
            "mqtt_fast_client_disabled",
            reason=problem,
            paho_version=version("paho-mqtt"),
            consequence="stock paho client: correct, but fewer messages per second",
        )
    if metrics is not None:
        metrics.mqtt_fast_client.set(0 if problem else 1)
    client = client_class(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=settings.ingestd_client_id,
        protocol=mqtt.MQTTv5,
    )
    client.manual_ack_set(True)
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    # Outgoing: datapoint maps at QoS 2; let paho queue as many as the control plane needs.
    client.max_queued_messages_set(0)
    configure_client(client, settings)
    return client


def connect_properties(settings: Settings) -> Properties:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY_S
    properties.ReceiveMaximum = settings.ingestd_receive_maximum
    return properties


def start(client: mqtt.Client, settings: Settings) -> None:
    """Connect in the background; paho keeps retrying while the broker is away."""
    client.connect_async(
        settings.mqtt_broker_host,
        settings.mqtt_broker_port,
        keepalive=KEEPALIVE_S,
        clean_start=False,
        properties=connect_properties(settings),
    )
    client.loop_start()


def network_thread(client: mqtt.Client) -> threading.Thread | None:
    """The thread loop_start() started. paho forgets it when the loop ends, for whatever
    reason, so the caller keeps it to notice that the loop died. A private name of paho's:
    should a release rename it, the watchdog goes without it rather than ingestd failing."""
    return getattr(client, "_thread", None)
