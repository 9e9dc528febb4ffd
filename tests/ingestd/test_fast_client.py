"""The fast MQTT path without a broker: real bytes through a real socket pair.

Every stream is fed split at every byte boundary (and byte by byte), so the chunked reader
and paho's packet assembly see every way TCP may cut it. Malformed PUBLISHes must be refused
(a protocol error that closes the connection, nothing delivered) and never read past their
end. When paho's internals differ from what FastClient expects, ingestd must pick the stock
client, say why, and report ingestd_mqtt_fast_client 0.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
import structlog

from ingestd import mqtt_session
from ingestd.fast_client import (
    FastClient,
    MalformedPublish,
    StockClient,
    decode_publish,
    select_client_class,
)
from ingestd.metrics import IngestMetrics
from schema.settings import load_settings

V5, V311 = mqtt.MQTTv5, mqtt.MQTTv311
PROTOCOL = mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: bytes, payload: bytes, qos: int, mid: int, properties: bytes | None) -> bytes:
    """A PUBLISH; properties None for MQTT 3.1.1, else the encoded properties of MQTT 5."""
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    if properties is not None:
        body += remaining_length(len(properties)) + properties
    body += payload
    return bytes([0x30 | qos << 1]) + remaining_length(len(body)) + body


def user_property(key: bytes, value: bytes) -> bytes:
    return b"\x26" + len(key).to_bytes(2, "big") + key + len(value).to_bytes(2, "big") + value


class Wire:
    """A client whose broker is the other end of a socket pair."""

    def __init__(self, client_class: type[mqtt.Client], protocol: int) -> None:
        self.client = client_class(
            mqtt.CallbackAPIVersion.VERSION2, client_id="wire", protocol=protocol
        )
        self.client.manual_ack_set(True)
        self.received: list[tuple[str, bytes, int, int]] = []
        self.fast: list[tuple[str, bytes, int, int]] = []

        def on_publish_received(topic, payload, mid, qos):
            self.fast.append((topic, bytes(payload), mid, qos))
            self.received.append((topic, bytes(payload), mid, qos))

        self.client.on_publish_received = on_publish_received
        self.client.on_message = lambda _c, _u, m: self.received.append(
            (m.topic, m.payload, m.mid, m.qos)
        )
        self.ours, self.broker = socket.socketpair()
        self.ours.setblocking(False)
        self.broker.settimeout(5)
        self.client._sock = self.ours

    def feed(self, *chunks: bytes) -> list[mqtt.MQTTErrorCode]:
        codes = []
        for chunk in chunks:
            if self.client._sock is None:
                break  # the client closed the connection
            self.broker.sendall(chunk)
            codes.append(self.client.loop_read())
        return codes

    def written(self) -> bytes:
        """What the client wrote: a socket pair holds it as soon as loop_write returns."""
        self.client.loop_write()
        data = b""
        self.broker.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while chunk := self.broker.recv(65536):
                data += chunk
        self.broker.settimeout(5)
        return data

    def close(self) -> None:
        self.client._sock = None
        self.ours.close()
        self.broker.close()


@pytest.fixture
def wires() -> Iterator[list[Wire]]:
    made: list[Wire] = []
    yield made
    for wire in made:
        wire.close()


def wire(wires: list[Wire], protocol: int, client_class: type[mqtt.Client] = FastClient) -> Wire:
    made = Wire(client_class, protocol)
    wires.append(made)
    return made


def splits(stream: bytes) -> Iterator[tuple[bytes, ...]]:
    yield (stream,)
    for cut in range(1, len(stream)):
        yield stream[:cut], stream[cut:]
    yield tuple(stream[i : i + 1] for i in range(len(stream)))


def valid_stream(protocol: int) -> tuple[bytes, list[tuple[str, bytes, int, int]], int]:
    """PUBLISHes of every shape ingestd gets, what they decode to, and how many take the
    fast path."""
    v5 = protocol == V5
    none = b"" if v5 else None
    big = bytes(range(256)) * 3  # a Remaining Length of two bytes
    packets = [
        (b"bemcom/c1/messages", b'{"value": "22.3", "timestamp": 1}', 1, 1, none),
        (b"bemcom/c1/messages", b"", 0, 0, none),
        (b"b/\xc3\xa4", big, 1, 65535, none),
        (b"t", b"x", 0, 0, none),
    ]
    fast = len(packets)
    if v5:
        # Properties: paho's own decoder takes these, to on_message.
        packets += [
            (b"bemcom/c1/logs", b"with props", 1, 2, b"\x01\x01" + user_property(b"k", b"v")),
            (b"bemcom/c1/logs", b"q0 props", 0, 0, b"\x03\x00\x04text"),
        ]
    stream = b"".join(publish(t, p, q, m, props) for t, p, q, m, props in packets)
    expected = [(t.decode(), p, m, q) for t, p, q, m, _ in packets]
    return stream, expected, fast


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_publishes_decode_exactly_at_every_split(wires, protocol):
    stream, expected, fast = valid_stream(protocol)
    for chunks in splits(stream):
        w = wire(wires, protocol)
        codes = w.feed(*chunks)
        assert all(code == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS for code in codes), chunks
        assert w.received == expected, len(chunks[0])
        assert len(w.fast) == fast
        assert w.client._sock is not None
        w.close()
        wires.remove(w)


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_ack_many_writes_exact_pubacks(wires, protocol):
    w = wire(wires, protocol)
    stream, expected, _ = valid_stream(protocol)
    w.feed(stream)
    w.client.ack_many([(m, q) for _, _, m, q in expected])
    qos1 = [m for _, _, m, q in expected if q == 1]
    assert w.written() == b"".join(b"\x40\x02" + m.to_bytes(2, "big") for m in qos1)


@pytest.mark.parametrize(
    "puback", [b"\x40\x02\x00\x01", b"\x40\x04\x00\x01\x00\x00"], ids=["short", "reason"]
)
def test_incoming_puback_at_every_split(wires, puback):
    """The control plane's own QoS 1 publish is acknowledged through the chunked reader."""
    for chunks in splits(puback + b"\xd0\x00"):  # + PINGRESP: two packets per chunk
        w = wire(wires, V5)
        w.client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
        acked = []
        w.client.on_publish = lambda _c, _u, mid, _rc, _p, acked=acked: acked.append(mid)
        info = w.client.publish("bemcom/c1/datapoint_map", b"{}", qos=1)
        sent = w.written()
        assert sent[0] == 0x32 and info.mid == 1
        w.feed(*chunks)
        assert acked == [1] and info.is_published()
        w.close()
        wires.remove(w)


def body(packet: bytes) -> tuple[int, bytes]:
    """Header byte and body (after the Remaining Length) of one packet."""
    i = 1
    while packet[i] & 0x80:
        i += 1
    return packet[0], packet[i + 1 :]


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
@pytest.mark.parametrize("qos", [0, 1])
def test_decoder_never_reads_past_a_truncated_body(protocol, qos):
    """Every prefix of a body: either what it holds, exactly, or MalformedPublish."""
    v5 = protocol == V5
    header, full = body(publish(b"bemcom/c1/x", b"payload", qos, 513, b"" if v5 else None))
    payload_at = 2 + 11 + (2 if qos else 0) + (1 if v5 else 0)
    for n in range(len(full) + 1):
        cut = bytearray(full[:n])
        if n < payload_at:
            with pytest.raises(MalformedPublish):
                decode_publish(header, cut, v5)
        else:
            assert decode_publish(header, cut, v5) == (
                "bemcom/c1/x",
                full[payload_at:n],
                513 if qos else 0,
                qos,
            )


MALFORMED = {
    "no body": (b"\x30\x00", (V5, V311)),
    "one byte of topic length": (b"\x30\x01\x00", (V5, V311)),
    "topic past the end": (b"\x30\x05\x00\x09abc", (V5, V311)),
    "topic length 0xffff": (b"\x30\x04\xff\xffab", (V5, V311)),
    "no packet identifier": (b"\x32\x05\x00\x03abc", (V5, V311)),
    "half a packet identifier": (b"\x32\x06\x00\x03abc\x01", (V5, V311)),
    "packet identifier 0": (b"\x32\x08\x00\x03abc\x00\x00\x00", (V5, V311)),
    "QoS 3": (b"\x36\x08\x00\x03abc\x00\x01\x00", (V5, V311)),
    "topic not UTF-8": (b"\x30\x06\x00\x03a\xffc\x00", (V5, V311)),
    "no properties length": (b"\x30\x05\x00\x03abc", (V5,)),
    "no properties length, QoS 1": (b"\x32\x07\x00\x03abc\x00\x01", (V5,)),
    "properties past the end": (b"\x30\x07\x00\x03abc\x05\x01", (V5,)),
    "property value past the end": (b"\x30\x08\x00\x03abc\x02\x26\x00", (V5,)),
    "unknown property": (b"\x30\x08\x00\x03abc\x02\x7f\x00", (V5,)),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_publish_is_refused(wires, name):
    """Refused as a protocol error (the connection closes), nothing delivered, also when
    a good packet follows in the same chunk, at every split."""
    packet, protocols = MALFORMED[name]
    good = publish(b"after", b"x", 0, 0, b"")
    for protocol in protocols:
        follow = good if protocol == V5 else publish(b"after", b"x", 0, 0, None)
        for chunks in splits(packet + follow):
            w = wire(wires, protocol)
            codes = w.feed(*chunks)
            assert codes[-1] == PROTOCOL, (protocol, chunks)
            assert w.received == []
            assert w.client._sock is None
            w.close()
            wires.remove(w)


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_truncated_stream_delivers_nothing(wires, protocol):
    """The broker goes away in the middle of a packet: connection lost, nothing handed on."""
    packet = publish(b"bemcom/c1/x", b"payload", 1, 9, b"" if protocol == V5 else None)
    for n in range(1, len(packet)):
        w = wire(wires, protocol)
        assert w.feed(packet[:n]) == [mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS]
        w.broker.shutdown(socket.SHUT_WR)
        assert w.client.loop_read() == mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
        assert w.received == []
        w.close()
        wires.remove(w)


def test_stock_client_decodes_and_acks_the_same(wires):
    stream, expected, _ = valid_stream(V5)
    w = wire(wires, V5, StockClient)
    w.feed(stream)
    for _ in expected:  # stock paho reads one packet per call
        w.client.loop_read()
    assert w.received == expected and w.fast == []
    w.client.ack_many([(m, q) for _, _, m, q in expected])
    qos1 = [m for _, _, m, q in expected if q == 1]
    assert w.written() == b"".join(b"\x40\x02" + m.to_bytes(2, "big") for m in qos1)


def create(metrics: IngestMetrics):
    return mqtt_session.create_client(load_settings({}), metrics)


def gauge(metrics: IngestMetrics) -> float | None:
    return metrics.registry.get_sample_value("ingestd_mqtt_fast_client")


def test_installed_paho_gets_the_fast_client():
    assert select_client_class() == (FastClient, None)
    metrics = IngestMetrics()
    with structlog.testing.capture_logs() as logs:
        client = create(metrics)
    assert type(client) is FastClient
    assert gauge(metrics) == 1
    assert not [e for e in logs if e["event"] == "mqtt_fast_client_disabled"]


def _noop_handle(self):
    return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


def _wider_queue(self, command, packet, mid, qos, info=None, retained=False):
    return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


def _renamed_in_packet(original):
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._in_packet["body"] = self._in_packet.pop("packet")

    return __init__


CHANGES = {
    # A renamed internal: caught by the attribute check.
    "_send_puback removed": ("_send_puback", None, "_send_puback"),
    # A changed signature: caught by inspect.
    "_packet_queue widened": ("_packet_queue", _wider_queue, "_packet_queue"),
    # The packet dict's layout: caught on a fresh instance.
    "_in_packet key renamed": ("__init__", _renamed_in_packet, "_in_packet"),
    # Same names, different meaning: only the socket-pair exchange sees it.
    "_packet_handle no longer dispatches": ("_packet_handle", _noop_handle, "probe"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_changed_paho_falls_back_to_stock_client(monkeypatch, change):
    name, replacement, reason_mentions = CHANGES[change]
    if replacement is None:
        monkeypatch.delattr(mqtt.Client, name)
    elif name == "__init__":
        monkeypatch.setattr(mqtt.Client, name, replacement(mqtt.Client.__init__))
    else:
        monkeypatch.setattr(mqtt.Client, name, replacement)
    client_class, problem = select_client_class()
    assert client_class is StockClient
    assert problem and reason_mentions in problem
    metrics = IngestMetrics()
    metrics.mqtt_fast_client.set(1)
    with structlog.testing.capture_logs() as logs:
        client = create(metrics)
    assert type(client) is StockClient
    assert gauge(metrics) == 0
    warnings = [e for e in logs if e["event"] == "mqtt_fast_client_disabled"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert warnings[0]["reason"] == problem
