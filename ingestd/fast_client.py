"""paho's MQTT client with fewer system calls per message, for ingest rates in the 10,000s/s.

Stock paho reads each packet with three or four recv() calls and returns to select() after
every packet; every acknowledgement written from another thread costs a wake-up write.
Each of those calls drops and retakes the GIL, and with writer threads wanting the GIL every
drop is a thread switch: that, not Python work, is what limits a busy ingestd. This
subclass reads the socket in large chunks, handles every packet of a chunk before going back
to select(), and lets a writer queue a whole batch of acknowledgements with one wake-up.

It relies on paho 2.x internals (the methods in _SIGNATURES, the packet dicts, a few
attributes). A paho release that renames one would fail loudly, one that changes what one
means would fail silently (lost acknowledgements, keep-alive drops). So `fast_path_problem`
checks them at start, down to a real PUBLISH/PUBACK exchange over a socket pair, and
`select_client_class` falls back to stock paho (`StockClient`) when anything differs.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable

import paho.mqtt.client as mqtt

_READ_CHUNK = 256 * 1024
_WAKE = b"0"
_PUBACK = struct.Struct("!BBH")
_CLOSE_DRAIN_S = 2.0


# (topic, payload, mid, qos): what a PUBLISH carries that ingest needs.
FastPublishHandler = Callable[[str, bytes, int, int], None]


class MalformedPublish(ValueError):
    """A PUBLISH whose fields do not fit in its own Remaining Length, or break the protocol."""


def decode_publish(header: int, packet: bytes | bytearray, mqtt5: bool):
    """(topic, payload, mid, qos) of a QoS 0/1 PUBLISH body, or None to leave it to paho.

    None for what paho's full decoder must see: MQTT 5 properties (a topic alias, user
    properties). Every index is
    checked against the body's length first: a field that would run past the end raises
    MalformedPublish rather than reading into nothing (a slice past the end silently
    shortens, an index raises IndexError on the network thread).
    """
    size = len(packet)
    qos = (header >> 1) & 0x03
    if qos == 3:
        raise MalformedPublish("QoS 3")
    if size < 2:
        raise MalformedPublish("no topic length")
    end = 2 + ((packet[0] << 8) | packet[1])
    if end > size:
        raise MalformedPublish("topic runs past the end of the packet")
    topic_end = end
    mid = 0
    if qos:
        if end + 2 > size:
            raise MalformedPublish("no packet identifier")
        mid = (packet[end] << 8) | packet[end + 1]
        if mid == 0:
            raise MalformedPublish("packet identifier 0")
        end += 2
    if mqtt5:
        if end >= size:
            raise MalformedPublish("no properties length")
        if packet[end] != 0:
            return None
        end += 1
    try:
        topic = packet[2:topic_end].decode()
    except UnicodeDecodeError:
        # MQTT: a receiver of ill-formed UTF-8 closes the connection (stock paho would
        # hand on a message whose topic raises when read, on the network thread).
        raise MalformedPublish("topic is not UTF-8") from None
    return topic, packet[end:], mid, qos


class FastClient(mqtt.Client):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Set to receive QoS 0 and 1 PUBLISHes without paho's MQTTMessage, Properties and
        # topic matcher; on_message still gets whatever this path does not handle.
        self.on_publish_received: FastPublishHandler | None = None
        self.malformed_publishes = 0
        self._read_buffer = b""
        self._read_pos = 0
        self._read_sock = None
        self._deferring = threading.local()

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_sock is not self._sock:
            # A new connection: nothing buffered from the old one may be parsed.
            self._read_sock, self._read_buffer, self._read_pos = self._sock, b"", 0
        if self._read_pos >= len(self._read_buffer):
            data = super()._sock_recv(_READ_CHUNK)
            if not data:
                return data
            self._read_buffer, self._read_pos = data, 0
        start = self._read_pos
        self._read_pos = min(start + bufsize, len(self._read_buffer))
        return self._read_buffer[start : self._read_pos]

    def _sock_close(self) -> None:
        """Close after our DISCONNECT as TCP wants it, so the last acknowledgements arrive.

        paho closes the socket right after writing DISCONNECT. PUBLISHes the broker sent
        meanwhile are still unread then, and closing a socket with unread data makes the
        kernel send a reset, on which the broker drops what it had not read yet: the last
        PUBACKs, so messages committed before a clean stop came again after the restart.
        Instead: end our direction, read until the broker closes its own (it does on
        DISCONNECT), then close. Only for a stop we asked for. On a TLS socket shutdown()
        drops the TLS layer first (no close_notify: the broker has our DISCONNECT already),
        and what still arrives is read raw and discarded, which is all the drain needs.
        """
        sock = self._sock
        if (
            sock is not None
            and self._state == mqtt._ConnectionState.MQTT_CS_DISCONNECTING
            and isinstance(sock, socket.socket)
        ):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + _CLOSE_DRAIN_S
                while (remaining := deadline - time.monotonic()) > 0:
                    readable, _, _ = select.select([sock], [], [], remaining)
                    if not readable or not sock.recv(_READ_CHUNK):
                        break
        super()._sock_close()

    def _buffered(self) -> int:
        return len(self._read_buffer) - self._read_pos if self._read_sock is self._sock else 0

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        if self._sock is None:
            return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
        while True:
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            # Return to select() only once the chunk is used up: select() cannot see
            # bytes already taken off the socket.
            if not self._buffered() or self._sock is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_handle(self) -> mqtt.MQTTErrorCode:
        handler = self.on_publish_received
        header = self._in_packet["command"]
        if handler is None or header & 0xF0 != mqtt.PUBLISH or header & 0x06 == 0x04:
            return super()._packet_handle()
        try:
            decoded = decode_publish(
                header, self._in_packet["packet"], self._protocol == mqtt.MQTTv5
            )
        except MalformedPublish:
            # What paho does with a packet it cannot decode: a protocol error, which closes
            # the connection; the broker redelivers what was not acknowledged.
            self.malformed_publishes += 1
            return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
        if decoded is None:
            return super()._packet_handle()
        topic, payload, mid, qos = decoded
        handler(topic, payload, mid, qos)
        if qos and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, acks: Iterable[tuple[int, int]]) -> None:
        """Acknowledge (mid, qos) pairs, waking the network thread once for all of them.

        QoS 1 acknowledgements go out as one write: a PUBACK with Remaining Length 2 is
        valid in MQTT 3.1.1 and, meaning "Success" with no properties, in MQTT 5.
        """
        pubacks = bytearray()
        self._deferring.active = True
        try:
            for mid, qos in acks:
                if qos == 1:
                    pubacks += _PUBACK.pack(mqtt.PUBACK, 2, mid)
                else:
                    self.ack(mid, qos)
        finally:
            self._deferring.active = False
        if pubacks:
            self._out_packet.append(_out_packet(mqtt.PUBACK, bytes(pubacks), 0, 0, None))
        if self._sockpairW is not None:
            with contextlib.suppress(BlockingIOError):
                self._sockpairW.send(_WAKE)

    def _packet_queue(self, command, packet, mid, qos, info=None) -> mqtt.MQTTErrorCode:
        if getattr(self._deferring, "active", False):
            self._out_packet.append(_out_packet(command, packet, mid, qos, info))
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_queue(command, packet, mid, qos, info)


def _out_packet(command, packet, mid, qos, info) -> dict:
    # The layout of paho's _OutPacket; fast_path_problem compares it with one paho makes.
    return {
        "command": command,
        "mid": mid,
        "qos": qos,
        "pos": 0,
        "to_process": len(packet),
        "packet": packet,
        "info": info,
    }


class StockClient(mqtt.Client):
    """paho as shipped, with the two names ingestd uses on FastClient.

    on_publish_received is never called: every PUBLISH reaches on_message through paho's own
    decoder, and each acknowledgement is its own wake-up of the network thread.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.on_publish_received: FastPublishHandler | None = None

    def ack_many(self, acks: Iterable[tuple[int, int]]) -> None:
        for mid, qos in acks:
            self.ack(mid, qos)


# Every paho method FastClient overrides or calls, with the parameters it passes.
_SIGNATURES = {
    "_sock_recv": ("self", "bufsize"),
    "_sock_close": ("self",),
    "_packet_read": ("self",),
    "_packet_handle": ("self",),
    "_packet_queue": ("self", "command", "packet", "mid", "qos", "info"),
    "_send_puback": ("self", "mid"),
    "_loop_rc_handle": ("self", "rc"),
    "loop_read": ("self", "max_packets"),
    "ack": ("self", "mid", "qos"),
}
_MODULE_NAMES = ("PUBLISH", "PUBACK", "MQTTv5", "MQTTErrorCode", "_ConnectionState")
_ERROR_CODES = ("MQTT_ERR_SUCCESS", "MQTT_ERR_NO_CONN", "MQTT_ERR_PROTOCOL", "MQTT_ERR_AGAIN")
_INSTANCE_ATTRIBUTES = {
    "_in_packet": dict,
    "_out_packet": collections.deque,
    "_manual_ack": bool,
    "_protocol": int,
}
_INSTANCE_NAMES = ("_sock", "_sockpairW", "_state")
_IN_PACKET_KEYS = ("command", "packet")

# The probe's traffic: QoS 1 and QoS 0 PUBLISHes for the fast path, one with a property
# (payload format indicator) for paho's decoder, then the PUBACK that ack_many must write.
_PROBE_PACKETS = (
    b"\x32\x0d\x00\x07probe/a\x00\x07\x00"
    + b"1"
    + b"\x30\x0c\x00\x07probe/b\x00"
    + b"22"
    + b"\x32\x0f\x00\x07probe/c\x00\x08\x02\x01\x01"
    + b"3"
)
_PROBE_EXPECTED = [
    ("probe/a", b"1", 7, 1),
    ("probe/b", b"22", 0, 0),
    ("probe/c", b"3", 8, 1),
]
_PROBE_PUBACK = b"\x40\x02\x00\x07"


def _shape_problem() -> str | None:
    for name in _MODULE_NAMES:
        if not hasattr(mqtt, name):
            return f"paho.mqtt.client.{name} is missing"
    for name in _ERROR_CODES:
        if not hasattr(mqtt.MQTTErrorCode, name):
            return f"MQTTErrorCode.{name} is missing"
    if not hasattr(mqtt._ConnectionState, "MQTT_CS_DISCONNECTING"):
        return "_ConnectionState.MQTT_CS_DISCONNECTING is missing"
    for name, expected in _SIGNATURES.items():
        method = inspect.getattr_static(mqtt.Client, name, None)
        if not inspect.isfunction(method):
            return f"Client.{name} is missing or not a plain method"
        parameters = tuple(inspect.signature(method).parameters)
        if parameters != expected:
            return f"Client.{name}{parameters} differs from the expected {expected}"
    return None


def _instance_problem(client: mqtt.Client) -> str | None:
    for name, kind in _INSTANCE_ATTRIBUTES.items():
        if not isinstance(getattr(client, name, None), kind):
            return f"Client().{name} is not a {kind.__name__}"
    for name in _INSTANCE_NAMES:
        if not hasattr(client, name):
            return f"Client().{name} is missing"
    missing = [key for key in _IN_PACKET_KEYS if key not in client._in_packet]
    if missing:
        return f"Client()._in_packet lacks {missing}"
    # An out-packet as paho itself queues it (no socket: it stays queued).
    client._packet_queue(mqtt.PUBACK, _PROBE_PUBACK, 0, 0)
    ours = _out_packet(mqtt.PUBACK, _PROBE_PUBACK, 0, 0, None)
    if not client._out_packet or set(client._out_packet[0]) != set(ours):
        return "paho's out-packet layout differs from the one ack_many queues"
    client._out_packet.clear()
    return None


def _exchange_problem(client: FastClient) -> str | None:
    received: list[tuple[str, bytes, int, int]] = []
    client.manual_ack_set(True)
    client.on_publish_received = lambda t, p, m, q: received.append((t, bytes(p), m, q))
    client.on_message = lambda _c, _u, m: received.append((m.topic, m.payload, m.mid, m.qos))
    ours, broker = socket.socketpair()
    try:
        ours.setblocking(False)
        broker.settimeout(1.0)
        client._sock = ours
        broker.sendall(_PROBE_PACKETS)
        rc = client.loop_read()
        if rc != mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS or received != _PROBE_EXPECTED:
            return f"the probe's PUBLISHes came through as {received} (rc {rc})"
        client.ack_many([(7, 1)])
        client.loop_write()
        written = broker.recv(64)
        if written != _PROBE_PUBACK:
            return f"ack_many wrote {written!r}, not the PUBACK {_PROBE_PUBACK!r}"
    except Exception as error:
        return f"the socket-pair probe failed: {error!r}"
    finally:
        client._sock = None
        ours.close()
        broker.close()
    return None


def fast_path_problem() -> str | None:
    """Why FastClient cannot be trusted with the installed paho, or None when it can."""
    try:
        problem = _shape_problem()
        if problem is None:
            client = FastClient(
                mqtt.CallbackAPIVersion.VERSION2, client_id="fast-path-probe", protocol=mqtt.MQTTv5
            )
            problem = _instance_problem(client) or _exchange_problem(client)
    except Exception as error:
        problem = f"checking paho's internals failed: {error!r}"
    return problem


def select_client_class() -> tuple[type[FastClient] | type[StockClient], str | None]:
    """FastClient when paho's internals are as it expects, else StockClient and the reason."""
    problem = fast_path_problem()
    return (StockClient, problem) if problem else (FastClient, None)
