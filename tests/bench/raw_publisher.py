"""QoS 1 publishing as fast as the broker takes it: pre-built PUBLISH packets over a plain
socket, PUBACKs counted as they come back.

paho's QoS 1 publisher costs tens of microseconds of Python per message (message object,
callbacks, locks): in the benchmarks it, not the subscriber, set the QoS 1 rate. Here the
packets are built before the clock starts, and the only limit is the window of unacknowledged
messages the broker allows in its CONNACK (MQTT 5 Receive Maximum; Mosquitto derives it from
max_inflight_messages and drops, or refuses with a reason code, what goes beyond it).
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Sequence

# CONNACK properties this parser steps over, by their value's size (MQTT 5, 2.2.2.2).
_FIXED = {0x01: 1, 0x02: 4, 0x11: 4, 0x13: 2, 0x21: 2, 0x22: 2, 0x24: 1, 0x25: 1, 0x27: 4}
_FIXED |= {0x28: 1, 0x29: 1, 0x2A: 1}
_STRINGS = {0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F}
RECEIVE_MAXIMUM = 0x21


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes | bytearray, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _string(text: bytes) -> bytes:
    return struct.pack("!H", len(text)) + text


def publish_packet(topic: bytes, payload: bytes, packet_id: int) -> bytes:
    """An MQTT 5 PUBLISH, QoS 1, with no properties."""
    body = _string(topic) + struct.pack("!H", packet_id) + b"\x00" + payload
    return b"\x32" + _varint(len(body)) + body


def connack_receive_maximum(body: bytes) -> int:
    """The Receive Maximum a CONNACK's body grants (65,535 when absent); raises on refusal."""
    if body[1] != 0:
        raise ConnectionError(f"CONNACK refused: reason code {body[1]:#04x}")
    length, at = _read_varint(body, 2)
    end = at + length
    while at < end:
        prop = body[at]
        at += 1
        if prop == RECEIVE_MAXIMUM:
            return struct.unpack_from("!H", body, at)[0]
        if prop in _FIXED:
            at += _FIXED[prop]
        elif prop in _STRINGS:
            at += 2 + struct.unpack_from("!H", body, at)[0]
        elif prop == 0x0B:
            at = _read_varint(body, at)[1]
        else:  # user property (0x26) or binary data: nothing after it that we need
            break
    return 65535


class RawPublisher:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        client_id = f"rawpub-{secrets.token_hex(4)}".encode()
        # protocol name, level 5, flags: clean start; keepalive 60 s; no properties
        body = _string(b"MQTT") + b"\x05\x02" + struct.pack("!H", 60) + b"\x00" + _string(client_id)
        self.sock.sendall(b"\x10" + _varint(len(body)) + body)
        header, connack = self._packet()
        if header >> 4 != 2:
            raise ConnectionError(f"expected CONNACK, got packet type {header >> 4}")
        self.window = connack_receive_maximum(connack)

    def _packet(self) -> tuple[int, bytes]:
        while True:
            if len(self.buffer) >= 2:
                try:
                    length, at = _read_varint(self.buffer, 1)
                except IndexError:
                    length, at = -1, 0
                if length >= 0 and len(self.buffer) >= at + length:
                    header, body = self.buffer[0], bytes(self.buffer[at : at + length])
                    del self.buffer[: at + length]
                    return header, body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self.buffer += chunk

    def _acks(self) -> tuple[int, int]:
        """Read what has arrived (at least one packet): (PUBACKs, refused PUBACKs)."""
        acked = refused = 0
        header, body = self._packet()
        while True:
            if header >> 4 == 4:
                acked += 1
                if len(body) > 2 and body[2] >= 0x80:
                    refused += 1
            if len(self.buffer) < 4:
                return acked, refused
            header, body = self._packet()

    def publish_all(self, packets: Sequence[bytes]) -> int:
        """Send every packet keeping at most `window` unacknowledged; returns how many the
        broker refused (a PUBACK reason code of 0x80 or more)."""
        sent = acked = refused = 0
        total = len(packets)
        while acked < total:
            room = min(self.window - (sent - acked), total - sent)
            if room > 0:
                self.sock.sendall(b"".join(packets[sent : sent + room]))
                sent += room
            got, bad = self._acks()
            acked += got
            refused += bad
        return refused

    def close(self) -> None:
        self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        self.sock.close()
