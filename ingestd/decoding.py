"""MQTT payload -> the row it is stored as; or a Rejected saying why not. Pure functions."""

from __future__ import annotations

import msgspec

from ingestd.routing import AVAILABLE, HEARTBEAT, LOGS, SCHEDULE, SETPOINT, VALUE
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
    """A payload that cannot be stored; `cause` is a short metric label."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail


_DECODERS = {
    VALUE: msgspec.json.Decoder(ValueMessage),
    SETPOINT: msgspec.json.Decoder(SetpointMessage),
    SCHEDULE: msgspec.json.Decoder(ScheduleMessage),
    LOGS: msgspec.json.Decoder(LogMessage),
    HEARTBEAT: msgspec.json.Decoder(HeartbeatMessage),
    AVAILABLE: msgspec.json.Decoder(AvailableDatapoints),
}
_MESSAGE_TYPES = {
    VALUE: ValueMessage,
    SETPOINT: SetpointMessage,
    SCHEDULE: ScheduleMessage,
    LOGS: LogMessage,
    HEARTBEAT: HeartbeatMessage,
    AVAILABLE: AvailableDatapoints,
}
_SETPOINT_LIST = msgspec.json.Decoder(SetpointList)
_SCHEDULE_LIST = msgspec.json.Decoder(ScheduleList)


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
            raise Rejected("malformed_json", str(error)) from None
        except msgspec.ValidationError as inner:
            raise Rejected("invalid_payload", str(inner)) from None


def _check_timestamp(timestamp: int) -> int:
    problem = timestamp_problem(timestamp)
    if problem is not None:
        raise Rejected("bad_timestamp", problem)
    return timestamp


def decode_value(datapoint_id: int, payload: bytes) -> tuple:
    message = _decode(VALUE, payload)
    value_num, value_raw = split_value(bytes(message.value).decode())
    return (datapoint_id, _check_timestamp(message.timestamp), value_num, value_raw)


def _decode_plan(kind: str, field: str, list_decoder, datapoint_id: int, payload: bytes):
    message = _decode(kind, payload)
    text = bytes(getattr(message, field)).decode()
    try:
        list_decoder.decode(text)
    except msgspec.ValidationError as error:
        raise Rejected("invalid_payload", f"{field}: {error}") from None
    except msgspec.DecodeError:
        pass  # NaN inside an item: the fallback already rebuilt it as Python JSON.
    return (datapoint_id, _check_timestamp(message.timestamp), text)


def decode_setpoint(datapoint_id: int, payload: bytes) -> tuple:
    return _decode_plan(SETPOINT, "setpoint", _SETPOINT_LIST, datapoint_id, payload)


def decode_schedule(datapoint_id: int, payload: bytes) -> tuple:
    return _decode_plan(SCHEDULE, "schedule", _SCHEDULE_LIST, datapoint_id, payload)


def decode_log(connector_id: int, payload: bytes) -> tuple:
    message = _decode(LOGS, payload)
    return (
        connector_id,
        _check_timestamp(message.timestamp),
        message.msg,
        message.emitter,
        message.level,
    )


def decode_heartbeat(connector_id: int, payload: bytes) -> tuple:
    message = _decode(HEARTBEAT, payload)
    return (
        connector_id,
        _check_timestamp(message.this_heartbeats_timestamp),
        _check_timestamp(message.next_heartbeats_timestamp),
    )


def decode_available(connector_id: int, payload: bytes) -> tuple:
    message = _decode(AVAILABLE, payload)
    entries = tuple(
        (key, kind, bytes(example).decode())
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
