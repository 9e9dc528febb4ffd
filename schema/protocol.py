"""The payloads of the BEMCom MQTT protocol (PROTOCOL.md) as msgspec Structs.

Decoding with these types is the validation: a payload that does not fit raises
msgspec.ValidationError or DecodeError, which callers count and log with the cause.
Values are kept as msgspec.Raw so the exact JSON text sent is what gets stored.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from schema.topics import MESSAGE_KINDS

# A timestamp below this is not milliseconds (it would be before 1973-03-03): the usual
# mistake is seconds. Above the upper bound it is most likely microseconds.
MIN_TIMESTAMP_MS = 100_000_000_000
MAX_TIMESTAMP_MS = 100_000_000_000_000


def timestamp_problem(timestamp: int) -> str | None:
    """Why `timestamp` is not a plausible ms timestamp, in the original's words; else None."""
    if timestamp < MIN_TIMESTAMP_MS:
        return (
            f"Timestamp ({timestamp}) seems unreasonably low. Check if it is in milliseconds "
            "and contact your adminstrator if this is the case."
        )
    if timestamp > MAX_TIMESTAMP_MS:
        return (
            f"Timestamp ({timestamp}) seems unreasonably high. Check if it is in milliseconds "
            "and contact your adminstrator if this is the case."
        )
    return None


class ValueMessage(msgspec.Struct):
    value: msgspec.Raw
    timestamp: int


class SetpointMessage(msgspec.Struct):
    setpoint: msgspec.Raw
    timestamp: int


class ScheduleMessage(msgspec.Struct):
    schedule: msgspec.Raw
    timestamp: int


class LogMessage(msgspec.Struct):
    timestamp: int
    msg: str
    level: int
    emitter: str | None = None


class HeartbeatMessage(msgspec.Struct):
    this_heartbeats_timestamp: int
    next_heartbeats_timestamp: int


class AvailableDatapoints(msgspec.Struct):
    sensor: dict[str, msgspec.Raw] = msgspec.field(default_factory=dict)
    actuator: dict[str, msgspec.Raw] = msgspec.field(default_factory=dict)


# Setpoint and schedule lists are checked for shape, then stored as the raw JSON text.
SetpointList = list[dict[str, Any]] | None
ScheduleList = list[dict[str, Any]] | None


class NonStandardJSON(ValueError):
    """Raised by python_json_fallback when the payload is not even Python's JSON."""


def python_json_fallback(payload: bytes, message_type: type) -> Any:
    """Decode what msgspec's strict parser refuses but Python's json writes: NaN, Infinity.

    Connectors written in Python publish `{"value": NaN}` with json.dumps; such a value must
    be stored, not rejected. Each Raw field is rebuilt from Python's own encoding.
    """
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise NonStandardJSON(str(error)) from None
    if not isinstance(document, dict):
        raise msgspec.ValidationError(f"Expected `object`, got `{type(document).__name__}`")
    raw_fields = set(MESSAGE_KINDS) & set(message_type.__struct_fields__)
    rebuilt = {
        key: (msgspec.Raw(json.dumps(item).encode()) if key in raw_fields else item)
        for key, item in document.items()
    }
    if message_type is AvailableDatapoints:
        for kind in ("sensor", "actuator"):
            section = rebuilt.get(kind)
            if isinstance(section, dict):
                rebuilt[kind] = {k: msgspec.Raw(json.dumps(v).encode()) for k, v in section.items()}
    return msgspec.convert(rebuilt, message_type)
