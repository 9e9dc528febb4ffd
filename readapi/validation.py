"""Validating message bodies the way the original's DRF serializers do, message for message.

Each validator takes the decoded JSON document and the datapoint's metadata and returns the
validated data (an ordered dict: what the POST echoes and what is published), or raises
ApiError 400 with DRF's error shape: `{"field": ["msg"]}`, nested lists for list items.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from readapi.body import not_text, too_deep
from readapi.datapoints_store import DatapointMeta
from readapi.errors import ApiError
from schema.protocol import timestamp_problem

MISSING = object()
REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
NULL_CHARACTERS = "Null characters are not allowed."
_DECIMAL_TAIL = re.compile(r"\.0*\s*$")


class Invalid(Exception):
    """One field's errors (a list of messages, or a nested structure)."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


def type_name(data: Any) -> str:
    return type(data).__name__


def require_dict(data: Any) -> dict:
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": [_not_a_dict(data)]})
    return data


def _not_a_dict(data: Any) -> str:
    return f"Invalid data. Expected a dictionary, but got {type_name(data)}."


def not_a_list(data: Any) -> str:
    return f'Expected a list of items but got type "{type_name(data)}".'


# --- fields, as DRF's CharField, IntegerField, FloatField, ListField convert them ---------


def char_field(data: Any, allow_null: bool = True, allow_blank: bool = False) -> str | None:
    if data is MISSING:
        raise Invalid([REQUIRED])
    if data is None:
        if allow_null:
            return None
        raise Invalid([NOT_NULL])
    if isinstance(data, bool) or not isinstance(data, str | int | float):
        raise Invalid(["Not a valid string."])
    text = str(data).strip()
    if text == "" and not allow_blank:
        raise Invalid(["This field may not be blank."])
    # DRF's ProhibitNullCharactersValidator; PostgreSQL cannot store NUL in text either.
    if "\x00" in text:
        raise Invalid([NULL_CHARACTERS])
    return text


def int_field(data: Any, allow_null: bool = False) -> int | None:
    if data is MISSING:
        raise Invalid([REQUIRED])
    if data is None:
        if allow_null:
            return None
        raise Invalid([NOT_NULL])
    if isinstance(data, str) and len(data) > 1000:
        raise Invalid(["String value too large."])
    if isinstance(data, bool | dict | list):
        raise Invalid(["A valid integer is required."])
    if isinstance(data, float) and not math.isfinite(data):
        raise Invalid(["A valid integer is required."])
    try:
        return int(_DECIMAL_TAIL.sub("", str(data)))
    except (ValueError, TypeError):
        raise Invalid(["A valid integer is required."]) from None


def float_field(data: Any) -> float | None:
    if data is None:
        return None
    if isinstance(data, dict | list):
        raise Invalid(["A valid number is required."])
    try:
        number = float(data)
    except (ValueError, TypeError):
        raise Invalid(["A valid number is required."]) from None
    if not math.isfinite(number):
        raise Invalid(["A valid number is required."])
    return number


def list_of_strings(data: Any) -> list[str | None] | None:
    if data is None:
        return None
    if not isinstance(data, list):
        raise Invalid([not_a_list(data)])
    values = []
    errors = {}
    for index, item in enumerate(data):
        try:
            values.append(char_field(item, allow_null=True, allow_blank=True))
        except Invalid as error:
            errors[str(index)] = error.detail
    if errors:
        raise Invalid(errors)
    return values


# --- the original's checks of values against the datapoint ------------------------------


def _py(value: Any) -> str:
    """`"%s" % value`, as the original formats values into its messages."""
    return str(value)


def check_value(datapoint: DatapointMeta, text: str | None) -> Any:
    """JSON text of a value -> the decoded value, checked against the datapoint's format."""
    if text is None:
        value = None
    else:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise Invalid([f"Value ({text}) cannot be parsed as JSON."]) from None
        # The body's limits hold for the JSON inside a value too: readers decode it again.
        # (A lone surrogate can only come from a \u escape: the body itself was checked.)
        surrogate = "\\u" in text and not_text(value)
        if surrogate or too_deep(text.encode("utf-8", "surrogatepass")):
            raise Invalid([f"Value ({text}) cannot be parsed as JSON."])
    data_format = datapoint.data_format
    if "_numeric" in data_format and type(value) not in (float, int, type(None)):
        raise Invalid(
            [f"Value ({_py(value)}) for numeric datapoint cannot be parsed to float or int."]
        )
    if "continuous_numeric" in data_format and value is not None:
        if datapoint.min_value is not None and value < datapoint.min_value:
            raise Invalid(
                [
                    f"Value ({_py(value)}) for numeric datapoint is smaller then minimum "
                    f"allowed value ({_py(datapoint.min_value)})."
                ]
            )
        if datapoint.max_value is not None and value > datapoint.max_value:
            raise Invalid(
                [
                    f"Value ({_py(value)}) for numeric datapoint is larger then maximum "
                    f"allowed value ({_py(datapoint.max_value)})."
                ]
            )
    if "_text" in data_format and type(value) not in (str, type(None)):
        raise Invalid([f"Value ({_py(value)}) for text datapoint is no string."])
    if "discrete_" in data_format:
        allowed = datapoint.allowed_values_list()
        if value not in (allowed or []):
            raise Invalid(
                [
                    f"Value ({_py(value)}) for discrete datapoint in list of "
                    f"allowed_values ({_py(allowed)})."
                ]
            )
    return value


def invalid_unless_plausible_timestamp(timestamp: int | None) -> int | None:
    """A REST field's timestamp, if plausibly ms; else a DRF-style field error (a 400)."""
    if timestamp is None:
        return None
    problem = timestamp_problem(timestamp)
    if problem:
        raise Invalid([problem])
    return timestamp


def _error_detail(error: Invalid) -> str:
    """str() of a DRF ValidationError's detail, which the original puts into messages."""
    messages = error.detail if isinstance(error.detail, list) else [error.detail]
    return "[" + ", ".join(f"ErrorDetail(string={m!r}, code='invalid')" for m in messages) + "]"


# --- whole messages ---------------------------------------------------------------------


def _collect(errors: dict, name: str, convert, *args) -> Any:
    try:
        return convert(*args)
    except Invalid as error:
        errors[name] = error.detail
        return MISSING


def value_message(data: Any, datapoint: DatapointMeta) -> dict:
    """`{"value": "<json>", "timestamp": ms}` -> {"value": decoded, "timestamp": ms}."""
    body = require_dict(data)
    errors: dict = {}
    text = _collect(errors, "value", char_field, body.get("value", MISSING))
    value = MISSING
    if text is not MISSING:
        value = _collect(errors, "value", check_value, datapoint, text)
    timestamp = _collect(errors, "timestamp", int_field, body.get("timestamp", MISSING))
    if timestamp is not MISSING:
        timestamp = _collect(errors, "timestamp", invalid_unless_plausible_timestamp, timestamp)
    if errors:
        raise Invalid(errors)
    return {"value": value, "timestamp": timestamp}


def _items(data: Any, allow_null: bool, item_fields) -> list[dict] | None:
    if data is MISSING:
        raise Invalid([REQUIRED])
    if data is None:
        if allow_null:
            return None
        raise Invalid([NOT_NULL])
    if not isinstance(data, list):
        raise Invalid({"non_field_errors": [not_a_list(data)]})
    items = []
    errors = []
    for raw in data:
        if not isinstance(raw, dict):
            errors.append({"non_field_errors": [_not_a_dict(raw)]})
            continue
        item_errors: dict = {}
        item: dict = {}
        for name, convert, required in item_fields:
            given = raw.get(name, MISSING)
            if given is MISSING and not required:
                continue
            converted = _collect(item_errors, name, convert, given)
            if converted is not MISSING or name not in item_errors:
                item[name] = converted
        errors.append(item_errors)
        items.append(item)
    if any(errors):
        raise Invalid(errors)
    return items


_TIMESTAMP_FIELD = ("from_timestamp", lambda d: int_field(d, allow_null=True), True)
SETPOINT_ITEM_FIELDS = (
    _TIMESTAMP_FIELD,
    ("to_timestamp", lambda d: int_field(d, allow_null=True), True),
    ("preferred_value", char_field, True),
    ("acceptable_values", list_of_strings, False),
    ("min_value", float_field, False),
    ("max_value", float_field, False),
)
SCHEDULE_ITEM_FIELDS = (
    _TIMESTAMP_FIELD,
    ("to_timestamp", lambda d: int_field(d, allow_null=True), True),
    ("value", char_field, True),
)


def _check_item_times(item: dict, label: str) -> None:
    from_ts, to_ts = item["from_timestamp"], item["to_timestamp"]
    if from_ts is not None and to_ts is not None and from_ts >= to_ts:
        raise Invalid(
            [
                f"Validation of timestamps of {label} ({json.dumps(item)}) failed. "
                "to_timestamp must be larger then from_timestamp"
            ]
        )
    for key in ("from_timestamp", "to_timestamp"):
        try:
            invalid_unless_plausible_timestamp(item[key])
        except Invalid as error:
            raise Invalid(
                [
                    f"Validation of {key} of {label} ({json.dumps(item)}) failed. "
                    f"The error was: {_error_detail(error)}"
                ]
            ) from None


def check_setpoint(items: list[dict] | None, datapoint: DatapointMeta) -> list[dict] | None:
    if items is None:
        return None
    for item in items:
        required = []
        if "discrete_" in datapoint.data_format:
            required.append("acceptable_values")
        if "continuous_numeric" in datapoint.data_format:
            required += ["min_value", "max_value"]
        for key in required:
            if key not in item:
                raise Invalid([f"Key '{key}' is missing in Setpoint Item ({json.dumps(item)})."])
        try:
            decoded = check_value(datapoint, item["preferred_value"])
        except Invalid as error:
            raise Invalid(
                [
                    f"Validation of preferred_value of Setpoint Item ({json.dumps(item)}) "
                    f"failed. The error was: {_error_detail(error)}"
                ]
            ) from None
        item["preferred_value"] = decoded
        _check_item_times(item, "Setpoint Item")
    return items


def check_schedule(items: list[dict], datapoint: DatapointMeta) -> list[dict]:
    for item in items:
        try:
            decoded = check_value(datapoint, item["value"])
        except Invalid as error:
            raise Invalid(
                [
                    f"Validation of value of Schedule Item ({json.dumps(item)}) failed. "
                    f"The error was: {_error_detail(error)}"
                ]
            ) from None
        item["value"] = decoded
        _check_item_times(item, "Schedule Item")
    return items


def list_message(kind: str, data: Any, datapoint: DatapointMeta) -> dict:
    """A setpoint or schedule message -> {kind: validated items, "timestamp": ms}."""
    body = require_dict(data)
    errors: dict = {}
    if kind == "setpoint":
        items = _collect(errors, kind, _items, body.get(kind, MISSING), True, SETPOINT_ITEM_FIELDS)
        if items is not MISSING:
            items = _collect(errors, kind, check_setpoint, items, datapoint)
    else:
        items = _collect(errors, kind, _items, body.get(kind, MISSING), False, SCHEDULE_ITEM_FIELDS)
        if items is not MISSING:
            items = _collect(errors, kind, check_schedule, items, datapoint)
    timestamp = _collect(errors, "timestamp", int_field, body.get("timestamp", MISSING))
    if timestamp is not MISSING:
        timestamp = _collect(errors, "timestamp", invalid_unless_plausible_timestamp, timestamp)
    if errors:
        raise Invalid(errors)
    return {kind: items, "timestamp": timestamp}


def message(kind: str, data: Any, datapoint: DatapointMeta) -> dict:
    if kind == "value":
        return value_message(data, datapoint)
    return list_message(kind, data, datapoint)


def validate_one(kind: str, data: Any, datapoint: DatapointMeta) -> dict:
    try:
        return message(kind, data, datapoint)
    except Invalid as error:
        raise ApiError(400, error.detail) from None


def validate_many(kind: str, data: Any, datapoint: DatapointMeta) -> list[dict]:
    """A PUT body: a list of messages, all valid or a 400 with one error entry per item."""
    if not isinstance(data, list):
        raise ApiError(400, {"non_field_errors": [not_a_list(data)]})
    validated = []
    errors = []
    for item in data:
        try:
            validated.append(message(kind, item, datapoint))
            errors.append({})
        except Invalid as error:
            errors.append(error.detail)
    if any(errors):
        raise ApiError(400, errors)
    return validated
