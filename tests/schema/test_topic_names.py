"""schema.topics' verdict on names, checked against the real Mosquitto (127.0.0.1:1883).

For each name a fresh raw MQTT v5 connection subscribes to `<name>/logs` and publishes at
QoS 1 to `<name>/<token>`, a topic exactly as long as the longest one a name heads
(LONGEST_SUFFIX). The broker "keeps" the connection if it grants the subscription and
acknowledges the message; the name is "one level" if the message also reaches a watcher
subscribed to `+/<token>`. Then:
- broker_refusal(name) is None   <=>  the broker keeps the connection;
- broker_name_problem(name) is None  <=>  kept, and delivered as one topic level.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Iterator

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema.topics import (
    LONGEST_SUFFIX,
    NAME_MAX_BYTES,
    PROTOCOL_NAME_MAX_BYTES,
    broker_name_problem,
    broker_refusal,
    connector_name_problem,
)
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.support.mqtt_probe import RawClient, Refused, mqtt_string


class Verdict(msgspec.Struct, frozen=True):
    kept: bool  # subscription granted, message acknowledged, connection open
    one_level: bool  # and delivered to a subscriber of "+/<token>"


class Broker:
    """A watcher subscribed to `+/<token>`, and a probe connection per name."""

    def __init__(self) -> None:
        # The probe topic's suffix "/<token>" is exactly as long as LONGEST_SUFFIX.
        self.token = ("n" + secrets.token_hex(16))[: len(LONGEST_SUFFIX) - 1].encode()
        self.watcher = RawClient(MQTT_HOST, MQTT_PORT)
        granted = self.watcher.subscribe(b"+/" + self.token)
        assert granted < 0x80, granted

    def close(self) -> None:
        self.watcher.close()

    def verdict(self, name: str | bytes) -> Verdict:
        # A str with a lone surrogate goes out as the bytes a careless client would send.
        raw = name if isinstance(name, bytes) else name.encode("utf-8", "surrogatepass")
        topic = raw + b"/" + self.token
        payload = secrets.token_hex(8).encode()
        try:
            mqtt_string(topic)
        except struct.error:
            return Verdict(kept=False, one_level=False)  # no MQTT packet can carry it
        probe = RawClient(MQTT_HOST, MQTT_PORT)
        try:
            if probe.subscribe(raw + b"/logs") >= 0x80:
                return Verdict(kept=False, one_level=False)
            probe.publish(topic, payload)
        except Refused:
            return Verdict(kept=False, one_level=False)
        finally:
            probe.close()
        return Verdict(kept=True, one_level=(topic, payload) in self.watcher.received_until_ping())


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    probe = Broker()
    yield probe
    probe.close()


def _check(broker: Broker, name: str | bytes) -> str | None:
    """A description of the disagreement between our functions and the broker, if any."""
    seen = broker.verdict(name)
    refusal, problem = broker_refusal(name), broker_name_problem(name)
    if (refusal is None) != seen.kept or (problem is None) != (seen.kept and seen.one_level):
        return f"{name!r}: broker {seen}, broker_refusal {refusal!r}, problem {problem!r}"
    return None


FIXED_NAMES: list[str | bytes] = [
    # taken
    "plain",
    "with space inside",
    " padded ",
    "",
    "Grüße-üñíçødé",
    "日本語の名前",
    "emoji-\U0001f600",
    "\u00a0",  # first after the C1 controls
    "~",
    "a$",
    "\ufdcf",
    "\ufdf0",
    "\ufffd",
    "\U0001fffd",
    "\U0010fffd",
    "\ud7ff",
    "\ue000",
    "\u2028",
    "\u200b",
    b"\xed\x9f\xbf",  # U+D7FF as bytes
    b"\xf4\x8f\xbf\xbd",  # U+10FFFD as bytes
    # control characters, NUL
    "x\tpoison",
    "\x00",
    "a\x00b",
    "\x01",
    "\n",
    "\r",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x80",
    "\x85",
    "\x9f",
    "tail\x9f",
    # non-characters
    "\ufdd0",
    "\ufde0",
    "\ufdef",
    "\ufffe",
    "\uffff",
    "\U0001fffe",
    "\U0001ffff",
    "\U0002fffe",
    "\U000effff",
    "\U0010fffe",
    "\U0010ffff",
    # not UTF-8
    "\ud800",
    "\udbff\udc00",  # a surrogate pair spelled out is not UTF-8 either
    "\udfff",
    b"\xc0\x80",  # overlong NUL
    b"\xc1\xbf",
    b"\xe0\x80\xaf",  # overlong '/'
    b"\xf0\x80\x80\xaf",
    b"\xed\xa0\x80",  # U+D800
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\x80",
    b"\xbf",
    b"a\xc3",  # truncated
    b"\xe2\x82",
    b"\xfe",
    b"\xff",
    # wildcards, levels, '$'
    "+",
    "a+",
    "+b",
    "#",
    "a#b",
    "/",
    "a/b",
    "/a",
    "a/",
    "$x",
    "$SYS",
]

# Characters on every side of every boundary the broker draws, and some ordinary ones.
_BOUNDARY_CODES = [
    *range(0x00, 0x22),
    0x23,
    0x24,
    0x2B,
    0x2F,
    *range(0x7D, 0xA2),
    *range(0xD7FE, 0xD802),
    *range(0xDBFF, 0xDC01),
    *range(0xDFFE, 0xE001),
    *range(0xFDCE, 0xFDD2),
    *range(0xFDEE, 0xFDF2),
    *range(0xFFFC, 0x10000),
    0x1FFFD,
    0x1FFFE,
    0x1FFFF,
    0x20000,
    0x10FFFD,
    0x10FFFE,
    0x10FFFF,
]
_names = st.one_of(
    st.text(
        alphabet=st.one_of(
            st.sampled_from([chr(code) for code in _BOUNDARY_CODES]),
            st.characters(codec=None, categories=["L", "N", "P", "S", "Z"]),
        ),
        min_size=1,
        max_size=8,
    ),
    st.binary(min_size=1, max_size=6),
)


def test_fixed_names_verdict_equals_the_broker(broker: Broker) -> None:
    assert len(FIXED_NAMES) > 60
    mismatches = [m for m in (_check(broker, name) for name in FIXED_NAMES) if m]
    assert not mismatches, "\n".join(mismatches)


@settings(
    max_examples=90,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=_names)
def test_generated_names_verdict_equals_the_broker(broker: Broker, name: str | bytes) -> None:
    mismatch = _check(broker, name)
    assert mismatch is None, mismatch


def test_the_reproduced_names_are_refused_by_the_broker_and_by_us(broker: Broker) -> None:
    # The names of issue 12: each takes a client off the broker, and each is refused here.
    for name in ("x\tpoison", "\x7f", "\x9f", "\ufdd0", "\ufdef", "\ufffe", "\uffff"):
        assert not broker.verdict(name).kept, name
        assert broker_refusal(name) and connector_name_problem(name), name


def test_byte_limits(broker: Broker) -> None:
    longest = "a" * PROTOCOL_NAME_MAX_BYTES
    assert broker.verdict(longest) == Verdict(kept=True, one_level=True)
    assert broker_refusal(longest) is None
    assert broker_name_problem(longest, max_bytes=PROTOCOL_NAME_MAX_BYTES) is None
    too_long = longest + "a"
    assert broker.verdict(too_long) == Verdict(kept=False, one_level=False)
    assert "65535 bytes" in (broker_refusal(too_long) or "")
    # What we allow is far below: 200 bytes, counted in UTF-8.
    assert broker_name_problem("é" * (NAME_MAX_BYTES // 2)) is None
    assert broker_name_problem("é" * (NAME_MAX_BYTES // 2) + "a") == (
        "The name must be at most 200 bytes (UTF-8); it is 201."
    )


def test_messages_say_what_is_wrong() -> None:
    assert broker_name_problem("x\tpoison") == (
        "The name must not contain the control character U+0009: the MQTT broker refuses it."
    )
    assert "non-character U+FFFE" in (broker_name_problem("a\ufffe") or "")
    assert "non-character U+10FFFF" in (broker_name_problem("\U0010ffff") or "")
    assert "wildcard '#'" in (broker_name_problem("a#") or "")
    assert "not well-formed UTF-8" in (broker_name_problem(b"\xc0\x80") or "")
    assert "lone surrogate U+D800" in (broker_name_problem("\ud800") or "")
    assert "'/'" in (broker_name_problem("a/b") or "")
    assert connector_name_problem("") == "The name must not be empty."
    assert connector_name_problem(" a") == "The name must not start or end with white space."
    assert connector_name_problem("boiler-room.2") is None
