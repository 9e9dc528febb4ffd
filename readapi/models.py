"""The JSON shapes of the REST API as msgspec Structs: responses are encoded from these, and
the OpenAPI document is generated from them.

Request bodies are validated by hand (readapi.validation) because clients rely on DRF's exact
error bodies, which a typed decoder cannot produce; the request Structs here document them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class ConnectorRef(msgspec.Struct):
    name: str


class DatapointOut(msgspec.Struct):
    id: int
    connector: ConnectorRef
    key_in_connector: str
    type: str
    data_format: str
    short_name: str | None
    description: str
    min_value: float | None
    max_value: float | None
    allowed_values: Any
    unit: str
    # Only shown when the client sent it (and may change datapoints): the original's
    # responses have no such field, and existing clients compare them byte for byte.
    is_active: bool | UnsetType = UNSET


class DatapointIn(msgspec.Struct):
    connector: ConnectorRef
    key_in_connector: str
    type: str
    data_format: str = "unknown"
    short_name: str | None = None
    description: str = ""
    min_value: float | None = None
    max_value: float | None = None
    allowed_values: list[Any] | None = None
    unit: str = ""
    is_active: bool | UnsetType = UNSET


# gc=False: a history answer creates ten thousands of these (a str and an int each, no
# cycles possible); untracked, they do not trigger the garbage collector's passes.
class ValueOut(msgspec.Struct, gc=False):
    """`value` is the JSON text of the value, as a string: `"21.5"`, `"\\"on\\""`, `"null"`."""

    value: str
    timestamp: int


class ValueIn(msgspec.Struct):
    value: str | float | None
    timestamp: int


class SetpointItem(msgspec.Struct):
    from_timestamp: int | None
    to_timestamp: int | None
    preferred_value: str | None
    acceptable_values: list[str | None] | UnsetType = UNSET
    min_value: float | UnsetType | None = UNSET
    max_value: float | UnsetType | None = UNSET


class SetpointOut(msgspec.Struct):
    setpoint: list[SetpointItem] | None
    timestamp: int


class SetpointIn(msgspec.Struct):
    setpoint: list[SetpointItem] | None
    timestamp: int


class ScheduleItem(msgspec.Struct):
    from_timestamp: int | None
    to_timestamp: int | None
    value: str | None


class ScheduleOut(msgspec.Struct):
    schedule: list[ScheduleItem]
    timestamp: int


class ScheduleIn(msgspec.Struct):
    schedule: list[ScheduleItem]
    timestamp: int


class LastValues(msgspec.Struct):
    msgs_by_datapoint_id: dict[str, ValueOut]


class LastSetpoints(msgspec.Struct):
    msgs_by_datapoint_id: dict[str, SetpointOut]


class LastSchedules(msgspec.Struct):
    msgs_by_datapoint_id: dict[str, ScheduleOut]


class PutMsgSummary(msgspec.Struct):
    msgs_created: int
    msgs_updated: int


class ConnectorIn(msgspec.Struct):
    name: str


class ConnectorOut(msgspec.Struct):
    id: int
    name: str
    mqtt_topic_logs: str
    mqtt_topic_heartbeat: str
    mqtt_topic_available_datapoints: str
    mqtt_topic_datapoint_map: str
    mqtt_topic_raw_message_to_db: str
    mqtt_topic_raw_message_reprocess: str
    mqtt_topic_datapoint_message_wildcard: str


class TokenRequest(msgspec.Struct):
    username: str
    password: str


class TokenOut(msgspec.Struct):
    token: str


class Detail(msgspec.Struct):
    detail: str


class HealthOut(msgspec.Struct):
    status: str
    database: str | UnsetType = UNSET
    broker: str | UnsetType = UNSET
