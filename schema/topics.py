"""The MQTT topics of connectors, datapoints and controllers (PROTOCOL.md), and which names
can head them.

A connector's or controller's name is the first level of each of its topics. Mosquitto
disconnects a client that subscribes or publishes to a topic it refuses, so one refused name
among ingestd's subscriptions would take ingestd off the broker, and with it every other
connector. Mosquitto refuses a topic (lib/utf8_mosq.c, mosquitto_validate_utf8, and its
topic checks) that is:
- not well-formed UTF-8: invalid or overlong sequences, surrogates U+D800-DFFF, beyond
  U+10FFFF;
- holding U+0000, a C0 or C1 control character (U+0001-001F, U+007F-009F) or a
  non-character (U+FDD0-FDEF, and U+xFFFE and U+xFFFF in every plane);
- holding '+' or '#' in a PUBLISH (a SUBSCRIBE takes them only as whole levels, as
  wildcards);
- longer than 65,535 bytes (the length field of an MQTT string has two bytes).
tests/schema/test_topic_names.py checks these functions against the real broker.
"""

from __future__ import annotations

import re

from schema.limits import MAX_ID

# The kinds of a datapoint's messages, each with its history and last-row table (a sensor
# has only values).
VALUE, SETPOINT, SCHEDULE = "value", "setpoint", "schedule"
MESSAGE_KINDS = (VALUE, SETPOINT, SCHEDULE)
# What a connector's datapoint map is when it has no active datapoint.
EMPTY_DATAPOINT_MAP = {"sensor": {}, "actuator": {}}

MAX_TOPIC_BYTES = 65_535
# The longest topic a name heads: a schedule of the largest datapoint id (a 32-bit serial).
LONGEST_SUFFIX = f"/messages/{MAX_ID}/schedule"
PROTOCOL_NAME_MAX_BYTES = MAX_TOPIC_BYTES - len(LONGEST_SUFFIX)  # 65,506
# What we allow: far below the protocol's limit, so that a shared subscription's
# "$share/<group>/" prefix, a connector's own topics and the column (255 characters) always
# fit; names are typed by people, and 200 bytes is 50 characters even in 4-byte UTF-8.
NAME_MAX_BYTES = 200

_NON_CHARACTERS = "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
# One class holding every character the broker refuses in a PUBLISH topic.
_REFUSED = re.compile(
    "[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef\ud800-\udfff+#" + re.escape(_NON_CHARACTERS) + "]"
)


def _describe(character: str) -> str:
    code = ord(character)
    if character in "+#":
        return f"the MQTT wildcard {character!r}"
    if code == 0:
        return "the null character U+0000"
    if code <= 0x1F or 0x7F <= code <= 0x9F:
        return f"the control character U+{code:04X}"
    if 0xD800 <= code <= 0xDFFF:
        return f"the lone surrogate U+{code:04X}, which is not UTF-8"
    return f"the non-character U+{code:04X}"


def broker_refusal(name: str | bytes) -> str | None:
    """Why Mosquitto would disconnect a client that subscribes or publishes to the topics
    `name` heads, or None if it would not. `name` may be the bytes a client sent."""
    if isinstance(name, bytes):
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError as error:
            return f"The name is not well-formed UTF-8 (byte {error.start}: {error.reason})."
    found = _REFUSED.search(name)
    if found:
        return f"The name must not contain {_describe(found.group())}: the MQTT broker refuses it."
    size = len(name.encode("utf-8"))
    if size > PROTOCOL_NAME_MAX_BYTES:
        return (
            f"The name is {size} bytes long: MQTT topics are at most {MAX_TOPIC_BYTES} bytes, "
            f"which leaves {PROTOCOL_NAME_MAX_BYTES} for the name."
        )
    return None


def broker_name_problem(name: str | bytes, max_bytes: int = NAME_MAX_BYTES) -> str | None:
    """Why `name` cannot head MQTT topics as one topic level, or None if it can.

    Besides what the broker refuses: no '/' (the name is one level; "a/messages/7" would
    head topics inside connector "a"'s), no leading '$' (topics starting with '$' are the
    broker's own, and wildcards do not match them), at most `max_bytes` UTF-8 bytes.
    """
    refused = broker_refusal(name)
    if refused:
        return refused
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    if "/" in name:
        return "The name must not contain '/': it is an MQTT topic level."
    if name.startswith("$"):
        return "The name must not start with '$' (reserved by MQTT)."
    size = len(name.encode("utf-8"))
    if size > max_bytes:
        return f"The name must be at most {max_bytes} bytes (UTF-8); it is {size}."
    return None


def connector_name_problem(name: str) -> str | None:
    """Why `name` cannot be a connector's (or controller's) name, or None if it can."""
    if not name or not name.strip():
        return "The name must not be empty."
    problem = broker_name_problem(name)
    if problem:
        return problem
    if name != name.strip():
        return "The name must not start or end with white space."
    return None


def connector_topics(name: str) -> dict[str, str]:
    return {
        "mqtt_topic_logs": f"{name}/logs",
        "mqtt_topic_heartbeat": f"{name}/heartbeat",
        "mqtt_topic_available_datapoints": f"{name}/available_datapoints",
        "mqtt_topic_datapoint_map": f"{name}/datapoint_map",
        "mqtt_topic_raw_message_to_db": f"{name}/raw_message_to_db",
        "mqtt_topic_raw_message_reprocess": f"{name}/raw_message_reprocess",
        "mqtt_topic_datapoint_message_wildcard": f"{name}/messages/#",
    }


def datapoint_topic(connector_name: str, datapoint_id: int, kind: str) -> str:
    return f"{connector_name}/messages/{datapoint_id}/{kind}"


def controlled_datapoints_topic(controller_name: str) -> str:
    return f"{controller_name}/controlled_datapoints"


def datapoint_map_topic(connector_name: str) -> str:
    return f"{connector_name}/datapoint_map"
