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

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingestd.fast_client import FastClient
from schema.broker_security import configure_client
from schema.settings import Settings

SESSION_EXPIRY_S = 30 * 24 * 3600
KEEPALIVE_S = 30


def create_client(settings: Settings) -> FastClient:
    client = FastClient(
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
    reason, so the caller keeps it to notice that the loop died."""
    return client._thread
