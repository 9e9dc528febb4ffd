"""paho's MQTT client with fewer system calls per message, for ingest rates in the 10,000s/s.

Stock paho reads each packet with three or four recv() calls and returns to select() after
every packet; every acknowledgement written from another thread costs a wake-up write.
Each of those calls drops and retakes the GIL, and with writer threads wanting the GIL every
drop is a thread switch: that, not Python work, is what limits a busy ingestd. This
subclass reads the socket in large chunks, handles every packet of a chunk before going back
to select(), and lets a writer queue a whole batch of acknowledgements with one wake-up.

It relies on paho 2.x internals (_sock_recv, _packet_read, _packet_queue, _out_packet); the
ingest tests exercise every one of them against a real broker.
"""

from __future__ import annotations

import contextlib
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


class FastClient(mqtt.Client):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Set to receive QoS 0 and 1 PUBLISHes without paho's MQTTMessage, Properties and
        # topic matcher; on_message still gets whatever this path does not handle.
        self.on_publish_received: FastPublishHandler | None = None
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
        # PUBLISH, QoS 0 or 1: topic length, topic, [packet id], [properties], payload.
        packet = self._in_packet["packet"]
        end = 2 + ((packet[0] << 8) | packet[1])
        try:
            topic = packet[2:end].decode()
        except UnicodeDecodeError:
            return super()._packet_handle()
        qos = (header & 0x06) >> 1
        mid = 0
        if qos:
            mid = (packet[end] << 8) | packet[end + 1]
            end += 2
        if self._protocol == mqtt.MQTTv5:
            if packet[end] != 0:
                # Properties (a topic alias, user properties): paho's full decoder.
                return super()._packet_handle()
            end += 1
        handler(topic, packet[end:], mid, qos)
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
            self._out_packet.append(
                {
                    "command": mqtt.PUBACK,
                    "mid": 0,
                    "qos": 0,
                    "pos": 0,
                    "to_process": len(pubacks),
                    "packet": bytes(pubacks),
                    "info": None,
                }
            )
        if self._sockpairW is not None:
            with contextlib.suppress(BlockingIOError):
                self._sockpairW.send(_WAKE)

    def _packet_queue(self, command, packet, mid, qos, info=None) -> mqtt.MQTTErrorCode:
        if getattr(self._deferring, "active", False):
            self._out_packet.append(
                {
                    "command": command,
                    "mid": mid,
                    "qos": qos,
                    "pos": 0,
                    "to_process": len(packet),
                    "packet": packet,
                    "info": info,
                }
            )
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_queue(command, packet, mid, qos, info)
