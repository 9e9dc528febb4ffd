"""Raw MQTT v5 packets, to ask the real broker whether it takes a topic.

paho validates nothing in topics, but it encodes a str as UTF-8 and would refuse to send a
lone surrogate; raw packets send exactly the bytes under test, as any client on the
building network could.
"""

from __future__ import annotations

import secrets
import socket
import struct

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14


class Refused(Exception):
    """The broker closed the connection or sent DISCONNECT."""


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number % 128, number // 128
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def mqtt_string(data: bytes) -> bytes:
    """Two length bytes and the data; struct.error if the protocol cannot carry it."""
    return struct.pack("!H", len(data)) + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


class RawClient:
    """One MQTT v5 connection that sends hand-built packets and reads the answers."""

    def __init__(self, host: str, port: int, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        client_id = f"names-probe-{secrets.token_hex(6)}".encode()
        # Protocol "MQTT" level 5, clean start, keep alive 60 s, no properties.
        body = mqtt_string(b"MQTT") + bytes([5, 0x02]) + struct.pack("!H", 60) + b"\x00"
        self.sock.sendall(_packet(CONNECT, 0, body + mqtt_string(client_id)))
        kind, _flags, answer = self.read()
        if kind != CONNACK or answer[1] != 0:
            raise RuntimeError(f"CONNECT refused: {kind} {answer.hex()}")

    def close(self) -> None:
        self.sock.close()

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise Refused("connection closed")
            data += chunk
        return data

    def read(self) -> tuple[int, int, bytes]:
        """(packet type, header flags, body) of the next packet; Refused if there is none."""
        try:
            first = self._exactly(1)[0]
            length, shift = 0, 0
            while True:
                byte = self._exactly(1)[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            body = self._exactly(length)
        except ConnectionResetError:
            raise Refused("connection reset") from None
        if first >> 4 == DISCONNECT:
            raise Refused(f"DISCONNECT {body[:1].hex()}")
        return first >> 4, first & 0x0F, body

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            raise Refused("connection closed") from None

    def subscribe(self, topic_filter: bytes, packet_id: int = 1) -> int:
        """SUBSCRIBE at QoS 1; the SUBACK's reason code (< 0x80 granted)."""
        body = struct.pack("!H", packet_id) + b"\x00" + mqtt_string(topic_filter) + b"\x01"
        self._send(_packet(SUBSCRIBE, 0x02, body))
        kind, _flags, answer = self.read()
        assert kind == SUBACK, kind
        return answer[3]

    def publish(self, topic: bytes, payload: bytes, packet_id: int = 2) -> None:
        """PUBLISH at QoS 1 and wait for its PUBACK."""
        body = mqtt_string(topic) + struct.pack("!H", packet_id) + b"\x00" + payload
        self._send(_packet(PUBLISH, 0x02, body))
        kind, _flags, _answer = self.read()
        assert kind == PUBACK, kind

    def received_until_ping(self) -> list[tuple[bytes, bytes]]:
        """(topic, payload) of every PUBLISH that arrives before the answer to a PINGREQ.

        The broker writes a message to its subscribers before it acknowledges it to the
        sender, so after a PUBACK elsewhere this sees every delivery that message caused.
        """
        self._send(_packet(PINGREQ, 0, b""))
        received = []
        while True:
            kind, flags, body = self.read()
            if kind == PINGRESP:
                return received
            if kind == PUBLISH:
                size = struct.unpack("!H", body[:2])[0]
                topic, rest = body[2 : 2 + size], body[2 + size :]
                if flags & 0x06:  # QoS > 0: a packet id to acknowledge
                    self._send(_packet(PUBACK, 0, rest[:2]))
                    rest = rest[2:]
                # Properties: their length is a varint, below 128 for what Mosquitto adds.
                received.append((topic, rest[1 + rest[0] :]))
