"""Database rows -> the contract's JSON bytes, encoded by msgspec without dicts per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from readapi.models import ValueOut
from schema.values import original_item_value, original_string_text

_encoder = msgspec.json.Encoder()
# Items of a stored setpoint or schedule list: the value keys stay as raw JSON text.
_RawItems = list[dict[str, msgspec.Raw]] | None
_raw_items_decoder = msgspec.json.Decoder(_RawItems)
VALUE_KEYS = {"setpoint": "preferred_value", "schedule": "value"}


def encode_value_rows(
    rows: Sequence[tuple[int, float | None, str | None]], exact: bool = False
) -> bytes:
    """(ms, value_num, value_raw) rows -> `[{"value":"21.5","timestamp":...},...]`.

    On PostgreSQL value_raw is the value's whole text, made by the server (readapi.sql).
    The same as schema.values.answer_value, inlined: only a string costs more than a
    lookup (the original's answer for it needs float()).
    """
    if exact:
        return _encoder.encode(
            [
                ValueOut(raw if raw is not None else ("null" if num is None else repr(num)), ms)
                for ms, num, raw in rows
            ]
        )
    return _encoder.encode(
        [
            ValueOut(
                (raw if raw[0] != '"' else original_string_text(raw))
                if raw is not None
                else ("null" if num is None else repr(num)),
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


def message_items(kind: str, stored: str, exact: bool = False) -> Any:
    """A stored setpoint/schedule list -> the GET shape: each item's value as JSON text.

    The original answers `json.dumps(item_value)`; the stored raw JSON of the value is that
    text (or, for a value we did not publish ourselves, the text its sender chose). Unless
    exact, a string float() reads is answered as that float, as the original stores it: in
    the value itself and in acceptable_values.
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
        out = {
            key: (bytes(raw).decode() if key == value_key else msgspec.json.decode(raw))
            for key, raw in item.items()
        }
        if not exact:
            text = out.get(value_key)
            if isinstance(text, str) and text[:1] == '"':
                out[value_key] = original_string_text(text)
            acceptable = out.get("acceptable_values")
            if isinstance(acceptable, list):
                out["acceptable_values"] = [original_item_value(v) for v in acceptable]
        shaped.append(out)
    return shaped


def encode_message_rows(kind: str, rows: Iterable[tuple[int, str]], exact: bool = False) -> bytes:
    return _encoder.encode(
        [{kind: message_items(kind, text, exact), "timestamp": ms} for ms, text in rows]
    )


def encode(document: Any) -> bytes:
    return _encoder.encode(document)
