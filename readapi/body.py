"""Reading a request body as JSON, with the original's error messages."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from readapi.errors import detail

_EMPTY = object()


def parse_json_body(raw: bytes, content_type: str | None) -> Any:
    """The decoded JSON document of a body; `{}` for an empty body, as DRF gives.

    msgspec decodes the usual case fast; only a body it refuses goes through Python's json,
    whose message ("Unterminated string starting at: ...") is the one clients know, and which
    also accepts the NaN and Infinity that Python clients send.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media and "json" not in media:
        raise detail(415, f'Unsupported media type "{media}" in request.')
    if not raw.strip():
        return {}
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        pass
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise detail(400, f"JSON parse error - {error}") from None
