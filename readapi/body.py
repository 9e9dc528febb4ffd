"""Reading a request body as JSON, with the original's error messages.

Three limits beyond the original's, each a 4xx instead of a 500 or a cross-site request:
- only `application/json` bodies are read (415 otherwise, in DRF's words), so a page on
  another site cannot send one as a "simple request" (text/plain, a form, or a Blob without
  a type) with the Basic credentials a browser has cached;
- nesting deeper than MAX_DEPTH levels is refused (400) before it reaches code that recurses
  over the document (Python's decoders give up at ~1,000 levels with RecursionError);
- a string with a lone surrogate (`"\\ud800"`) is refused (400): it is no Unicode text, and
  neither PostgreSQL nor our JSON encoder can store or send it.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import msgspec

from readapi.errors import detail

MAX_DEPTH = 64
# Where no one has logged in yet (POST /auth/token/, the admin login form) a body is a few
# fields: a stranger may not make a worker read READAPI_MAX_BODY_BYTES (32 MiB) of it.
MAX_UNAUTHENTICATED_BODY_BYTES = 64 * 1024
JSON_MEDIA_TYPE = "application/json"

# Only quotes and brackets matter to the depth; the rest of a document is deleted first.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
_STRING = re.compile(rb'"[^"]*"')


class JsonError(ValueError):
    """A body that is no acceptable JSON document; str() says why."""


def nesting_depth(document: bytes) -> int:
    """How deeply the arrays and objects of a valid JSON document nest (0 for a scalar).

    Only for documents a decoder has accepted, whose strings are well formed. Every step is
    a C loop (a restore batch of 10,000 values takes about as long as msgspec decoding it):
    escaped backslashes, then escaped quotes go; of the rest only quotes and brackets stay;
    `""` goes (an empty string, or two strings with nothing but `:` or `,` between them,
    which then read as one); the few strings left, those holding brackets, go; the brackets
    that remain are counted.
    """
    unescaped = document.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = unescaped.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    steps = _STRING.sub(b"", structure).translate(_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def too_deep(document: bytes) -> bool:
    """Nested deeper than MAX_DEPTH (a valid JSON document, as for nesting_depth)."""
    if document.count(b"[") + document.count(b"{") <= MAX_DEPTH:
        return False  # cannot be: spare the scan
    return nesting_depth(document) > MAX_DEPTH


def _too_deep() -> JsonError:
    return JsonError(f"nested deeper than {MAX_DEPTH} levels")


def decode_json(raw: bytes) -> Any:
    """The document of a JSON body, or JsonError with the reason.

    msgspec decodes the usual case fast; only a body it refuses goes through Python's json,
    whose message ("Unterminated string starting at: ...") is the one clients know, and which
    also accepts the NaN and Infinity that Python clients send.
    """
    try:
        document = msgspec.json.decode(raw)
    except RecursionError:
        raise _too_deep() from None
    except msgspec.DecodeError:
        document = _decode_leniently(raw)
    if too_deep(raw):
        raise _too_deep()
    return document


def _decode_leniently(raw: bytes) -> Any:
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates through.
        document = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise _too_deep() from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise JsonError(str(error)) from None
    surrogate = not_text(document)
    if surrogate:
        raise JsonError(f"a string holds a lone surrogate (\\u{ord(surrogate):04x}), not text")
    return document


def not_text(document: Any) -> str:
    """The first lone surrogate in the strings (or keys) of a decoded document, or "".

    msgspec refuses them as it encodes: a C-speed check. Needed after Python's json only,
    since msgspec's decoder never produces them.
    """
    try:
        msgspec.json.encode(document)
    except UnicodeEncodeError as error:
        return error.object[error.start]
    return ""


def is_json_media_type(content_type: str) -> bool:
    """application/json, with any parameters (charset=...), as DRF's JSONParser matches."""
    return content_type.split(";", 1)[0].strip().lower() == JSON_MEDIA_TYPE


def parse_json_body(raw: bytes, content_type: str | None) -> Any:
    """The decoded JSON document of a body; `{}` for an empty body, as DRF gives.

    A body that is not declared application/json is refused with DRF's 415, naming the
    Content-Type as sent ("" when there is none), before a byte of it is parsed.
    """
    if not raw:
        return {}
    if not is_json_media_type(content_type or ""):
        raise detail(415, f'Unsupported media type "{content_type or ""}" in request.')
    if not raw.strip():
        return {}
    try:
        return decode_json(raw)
    except JsonError as error:
        raise detail(400, f"JSON parse error - {error}") from None
