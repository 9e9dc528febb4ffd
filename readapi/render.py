"""Database rows -> the contract's JSON bytes, encoded by msgspec without dicts per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from readapi.models import ValueOut

_encoder = msgspec.json.Encoder()
# Items of a stored setpoint or schedule list: the value keys stay as raw JSON text.
_RawItems = list[dict[str, msgspec.Raw]] | None
_raw_items_decoder = msgspec.json.Decoder(_RawItems)
VALUE_KEYS = {"setpoint": "preferred_value", "schedule": "value"}


def value_text(value_num: float | None, value_raw: str | None) -> str:
    """schema.values.join_value, inlined in the hot loop below."""
    if value_raw is not None:
        return value_raw
    if value_num is None:
        return "null"
    return repr(value_num)


def encode_value_rows(rows: Sequence[tuple[int, float | None, str | None]]) -> bytes:
    """(ms, value_num, value_raw) rows -> `[{"value":"21.5","timestamp":...},...]`."""
    return _encoder.encode(
        [
            ValueOut(
                raw if raw is not None else ("null" if num is None else repr(num)),
                ms,
            )
            for ms, num, raw in rows
        ]
    )


def aggregate_text(result: float | int | None) -> str:
    if result is None:
        return "null"
    return repr(result)


def encode_aggregate_rows(rows: Iterable[tuple[int, Any]]) -> bytes:
    return _encoder.encode([ValueOut(aggregate_text(result), ms) for ms, result in rows])


def message_items(kind: str, stored: str) -> Any:
    """A stored setpoint/schedule list -> the GET shape: each item's value as JSON text.

    The original answers `json.dumps(item_value)`; the stored raw JSON of the value is that
    text (or, for a value we did not publish ourselves, the text its sender chose).
    """
    try:
        items = _raw_items_decoder.decode(stored)
    except (msgspec.ValidationError, msgspec.DecodeError):
        # Not a list of objects (a controller may publish anything): show it as it is.
        return msgspec.Raw(stored.encode())
    if items is None:
        return None
    value_key = VALUE_KEYS[kind]
    shaped = []
    for item in items:
        shaped.append(
            {
                key: (bytes(raw).decode() if key == value_key else msgspec.json.decode(raw))
                for key, raw in item.items()
            }
        )
    return shaped


def encode_message_rows(kind: str, rows: Iterable[tuple[int, str]]) -> bytes:
    return _encoder.encode(
        [{kind: message_items(kind, text), "timestamp": ms} for ms, text in rows]
    )


def encode(document: Any) -> bytes:
    return _encoder.encode(document)
