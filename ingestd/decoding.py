"""MQTT payload -> the row it is stored as; or a Rejected saying why not. Pure functions."""

from __future__ import annotations

import json
import re

import msgspec

from ingestd.routing import AVAILABLE, HEARTBEAT, LOGS, SCHEDULE, SETPOINT, VALUE
from schema.limits import INT32
from schema.protocol import (
    AvailableDatapoints,
    HeartbeatMessage,
    LogMessage,
    NonStandardJSON,
    ScheduleList,
    ScheduleMessage,
    SetpointList,
    SetpointMessage,
    ValueMessage,
    python_json_fallback,
    timestamp_problem,
)
from schema.values import split_value

# Row shapes, as tuples because millions of them pass through:
#   value     (datapoint_id, timestamp_ms, value_num, value_raw)
#   setpoint  (datapoint_id, timestamp_ms, setpoint_json)
#   schedule  (datapoint_id, timestamp_ms, schedule_json)
#   logs      (connector_id, timestamp_ms, msg, emitter, level)
#   heartbeat (connector_id, this_heartbeats_timestamp, next_heartbeats_timestamp)
#   available (connector_id, ((key, type, example_json), ...))


class Rejected(Exception):
    """A payload that cannot be stored; `cause` is a short metric label (CAUSES)."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail


# Every cause a decoder gives (the `cause` label of ingestd_messages_rejected_total).
CAUSES = frozenset(
    {
        "malformed_json",  # not JSON, not even Python's json module's (NaN, Infinity)
        "invalid_payload",  # JSON of the wrong shape: missing field, wrong type
        "bad_timestamp",  # not a plausible ms timestamp
        "invalid_utf8",  # bytes that are not UTF-8, inside a string or outside
        "too_deep",  # nesting deeper than the decoder's recursion allows
        "invalid_text",  # a text field with U+0000 or a lone surrogate (no database stores it)
        "invalid_value",  # a number out of its column's range (log level)
        "undecodable",  # any other error of a decoder: the message alone pays for it
    }
)

# Raw control characters are not allowed inside JSON strings; msgspec.Raw skips strings
# without looking. Only a value that has one is parsed again, strictly.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f]")


_MESSAGE_TYPES = {
    VALUE: ValueMessage,
    SETPOINT: SetpointMessage,
    SCHEDULE: ScheduleMessage,
    LOGS: LogMessage,
    HEARTBEAT: HeartbeatMessage,
    AVAILABLE: AvailableDatapoints,
}
_DECODERS = {kind: msgspec.json.Decoder(type_) for kind, type_ in _MESSAGE_TYPES.items()}
_SETPOINT_LIST = msgspec.json.Decoder(SetpointList)
_SCHEDULE_LIST = msgspec.json.Decoder(ScheduleList)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _decode(kind: str, payload: bytes):
    try:
        return _DECODERS[kind].decode(payload)
    except msgspec.ValidationError as error:
        raise Rejected("invalid_payload", str(error)) from None
    except msgspec.DecodeError as error:
        # Python connectors write NaN and Infinity, which strict JSON parsers refuse.
        try:
            return python_json_fallback(payload, _MESSAGE_TYPES[kind])
        except NonStandardJSON:
            cause = "malformed_json" if _is_utf8(payload) else "invalid_utf8"
            raise Rejected(cause, str(error)) from None
        except msgspec.ValidationError as inner:
            raise Rejected("invalid_payload", str(inner)) from None


def _raw_text(raw: msgspec.Raw) -> str:
    """The JSON text of a Raw field, checked where msgspec did not look (inside strings)."""
    try:
        text = bytes(raw).decode()
    except UnicodeDecodeError as error:
        raise Rejected("invalid_utf8", str(error)) from None
    if _CONTROL_CHARACTER.search(text) is not None:
        try:
            json.loads(text)
        except ValueError as error:
            raise Rejected("malformed_json", str(error)) from None
    return text


def _check_text(field: str, text: str | None) -> str | None:
    """A text field the databases can store: PostgreSQL refuses U+0000 in text, and a lone
    surrogate (which Python's json lets through) cannot be encoded as UTF-8."""
    if text is None:
        return None
    if "\x00" in text:
        raise Rejected("invalid_text", f"{field} contains U+0000")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise Rejected("invalid_text", f"{field} contains a lone surrogate") from None
    return text


def _reject_implausible_timestamp(timestamp: int) -> int:
    """The timestamp, if it is plausibly ms (not seconds or microseconds); else the message is
    rejected and counted."""
    problem = timestamp_problem(timestamp)
    if problem is not None:
        raise Rejected("bad_timestamp", problem)
    return timestamp


def decode_value(datapoint_id: int, payload: bytes) -> tuple:
    message = _decode(VALUE, payload)
    value_num, value_raw = split_value(_raw_text(message.value))
    return (datapoint_id, _reject_implausible_timestamp(message.timestamp), value_num, value_raw)


def _decode_plan(kind: str, field: str, list_decoder, datapoint_id: int, payload: bytes):
    message = _decode(kind, payload)
    text = _raw_text(getattr(message, field))
    try:
        list_decoder.decode(text)
    except msgspec.ValidationError as error:
        raise Rejected("invalid_payload", f"{field}: {error}") from None
    except msgspec.DecodeError:
        # NaN inside an item: the fallback rebuilt it as Python JSON. Its shape must hold
        # all the same (a bare NaN is no list).
        try:
            msgspec.convert(json.loads(text), list_decoder.type)
        except ValueError as error:
            raise Rejected("invalid_payload", f"{field}: {error}") from None
    return (datapoint_id, _reject_implausible_timestamp(message.timestamp), text)


def decode_setpoint(datapoint_id: int, payload: bytes) -> tuple:
    return _decode_plan(SETPOINT, "setpoint", _SETPOINT_LIST, datapoint_id, payload)


def decode_schedule(datapoint_id: int, payload: bytes) -> tuple:
    return _decode_plan(SCHEDULE, "schedule", _SCHEDULE_LIST, datapoint_id, payload)


def decode_log(connector_id: int, payload: bytes) -> tuple:
    message = _decode(LOGS, payload)
    if message.level not in INT32:
        raise Rejected("invalid_value", f"level {message.level} is out of range")
    return (
        connector_id,
        _reject_implausible_timestamp(message.timestamp),
        _check_text("msg", message.msg),
        _check_text("emitter", message.emitter),
        message.level,
    )


def decode_heartbeat(connector_id: int, payload: bytes) -> tuple:
    message = _decode(HEARTBEAT, payload)
    return (
        connector_id,
        _reject_implausible_timestamp(message.this_heartbeats_timestamp),
        _reject_implausible_timestamp(message.next_heartbeats_timestamp),
    )


def decode_available(connector_id: int, payload: bytes) -> tuple:
    message = _decode(AVAILABLE, payload)
    entries = tuple(
        (_check_text("key", key), kind, _raw_text(example))
        for kind, section in (("sensor", message.sensor), ("actuator", message.actuator))
        for key, example in section.items()
    )
    return (connector_id, entries)


DECODE_BY_KIND = {
    VALUE: decode_value,
    SETPOINT: decode_setpoint,
    SCHEDULE: decode_schedule,
    LOGS: decode_log,
    HEARTBEAT: decode_heartbeat,
    AVAILABLE: decode_available,
}


def decode_message(kind: str, target_id: int, payload: bytes) -> tuple:
    """The row of one message, or Rejected: whatever goes wrong costs only this message."""
    try:
        return DECODE_BY_KIND[kind](target_id, payload)
    except Rejected:
        raise
    except RecursionError:
        raise Rejected("too_deep", "nested deeper than the decoder allows") from None
    except UnicodeDecodeError as error:
        raise Rejected("invalid_utf8", str(error)) from None
    except UnicodeEncodeError as error:
        raise Rejected("invalid_text", str(error)) from None
    except Exception as error:
        raise Rejected("undecodable", f"{type(error).__name__}: {error}") from None
