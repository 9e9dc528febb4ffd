"""Validating datapoint metadata of POST/PUT /datapoint/ as the original's ModelSerializer."""

from __future__ import annotations

from typing import Any

import msgspec

from readapi.validation import (
    MISSING,
    REQUIRED,
    Invalid,
    char_field,
    float_field,
    not_a_list,
    require_dict,
)
from schema.tables import DATA_FORMATS, DATAPOINT_TYPES

# Columns a client may set, besides the matching keys (connector, key_in_connector, type).
WRITABLE = (
    "data_format",
    "short_name",
    "description",
    "min_value",
    "max_value",
    "allowed_values",
    "unit",
    "is_active",
)


class DatapointInput(msgspec.Struct):
    connector_name: str
    key_in_connector: str
    type: str
    values: dict[str, Any]  # only the writable columns the client sent, as stored


def _choice(data: Any, choices: tuple[str, ...]) -> str:
    if data is MISSING:
        raise Invalid([REQUIRED])
    if data is None:
        raise Invalid(["This field may not be null."])
    if not isinstance(data, str) or data not in choices:
        raise Invalid([f'"{data}" is not a valid choice.'])
    return data


def _sized(data: Any, max_length: int, allow_null: bool, allow_blank: bool) -> str | None:
    value = char_field(data, allow_null=allow_null, allow_blank=allow_blank)
    if value is not None and len(value) > max_length:
        raise Invalid([f"Ensure this field has no more than {max_length} characters."])
    return value


def _boolean(data: Any) -> bool:
    if data in (True, "true", "True", "TRUE", 1, "1") and not isinstance(data, float):
        return True
    if data in (False, "false", "False", "FALSE", 0, "0") and not isinstance(data, float):
        return False
    raise Invalid(["Must be a valid boolean."])


def _allowed_values(data: Any) -> str | None:
    if data is None:
        return None
    if not isinstance(data, list):
        raise Invalid([not_a_list(data)])
    return msgspec.json.encode(data).decode()


def _connector(data: Any) -> str:
    if data is MISSING:
        raise Invalid([REQUIRED])
    if data is None:
        raise Invalid(["This field may not be null."])
    body = require_dict(data)
    try:
        return _sized(body.get("name", MISSING), 255, False, False)
    except Invalid as error:
        raise Invalid({"name": error.detail}) from None


_CONVERTERS = {
    "data_format": lambda d: _choice(d, DATA_FORMATS),
    "short_name": lambda d: _sized(d, 30, True, True),
    "description": lambda d: char_field(d, allow_null=False, allow_blank=True),
    "min_value": float_field,
    "max_value": float_field,
    "allowed_values": _allowed_values,
    "unit": lambda d: _sized(d, 255, False, True),
    "is_active": _boolean,
}


def datapoint_input(data: Any) -> DatapointInput:
    """One datapoint of a request, or Invalid with DRF's field errors."""
    body = require_dict(data)
    errors: dict = {}
    parsed: dict[str, Any] = {}
    for name, convert in (
        ("connector", _connector),
        ("key_in_connector", lambda d: char_field(d, allow_null=False)),
        ("type", lambda d: _choice(d, DATAPOINT_TYPES)),
    ):
        try:
            parsed[name] = convert(body.get(name, MISSING))
        except Invalid as error:
            errors[name] = error.detail
    values = {}
    for name in WRITABLE:
        if name not in body:
            continue
        try:
            values[name] = _CONVERTERS[name](body[name])
        except Invalid as error:
            errors[name] = error.detail
    if errors:
        raise Invalid(errors)
    return DatapointInput(parsed["connector"], parsed["key_in_connector"], parsed["type"], values)
