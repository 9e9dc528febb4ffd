"""How a datapoint value is stored: exact JSON back out, and a float for SQL averages.

A value arrives as JSON text. It is kept as two columns:
- `value_num`: the float of a finite number or of a string that Python's float() reads
  ("18.0", as the original stores such a string), else NULL, so SQL can average, sum and
  bucket values without parsing;
- `value_raw`: the JSON text as it was sent, or NULL where it adds nothing: for JSON null, and
  for a number whose text is exactly `repr(value_num)` (the usual float), which keeps the
  row that grows narrow.

How a value is answered is a choice made when it is read (`answer_value`): by default as the
original Django service answers it, which stores a string that Python's float() reads as that
float (`"22.30"` -> `22.3`); with exact values (BEMCOM_EXACT_VALUES) as it was sent.
"""

from __future__ import annotations

import json
import math

import msgspec

_NUMBER_START = frozenset("-0123456789")
# ASCII characters that no text float() reads starts with (it reads leading whitespace, a
# sign, digits, ".", "inf"/"infinity"/"nan" in any case).
_NEVER_STARTS_A_FLOAT = frozenset(
    chr(code)
    for code in range(128)
    if not (chr(code).isspace() or chr(code).isdigit() or chr(code) in "+-.iInN")
)


def split_value(text: str) -> tuple[float | None, str | None]:
    """JSON text of a value -> (value_num, value_raw) as stored."""
    if text == "null":
        return None, None
    first = text[:1]
    if first in _NUMBER_START:
        try:
            number = float(text)
        except ValueError:
            return None, text
        if not math.isfinite(number):
            # JSON has no NaN or Infinity (Python's json writes them anyway); keep the text,
            # leave them out of averages. SQLite would store NaN as NULL anyway.
            return None, text
        return number, (None if repr(number) == text else text)
    if first == '"':
        # The float the original stores for a string: whatever float() reads ("22.30",
        # " 22 ", "1_000"), so averages take in what the original's would. Most strings are
        # told apart by their first character, without decoding (an escape may be a space).
        lead = text[1:2]
        if lead in _NEVER_STARTS_A_FLOAT and lead != "\\":
            return None, text
        try:
            number = float(json.loads(text))
        except ValueError:
            return None, text
        if math.isfinite(number):
            return number, text
    return None, text


def join_value(value_num: float | None, value_raw: str | None) -> str:
    """The stored columns -> the JSON text of the value, exactly as it was sent."""
    if value_raw is not None:
        return value_raw
    if value_num is None:
        return "null"
    return repr(value_num)


_json_string = msgspec.json.Decoder(str)
# json.dumps's spelling of the floats JSON has no number for.
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def float_text(number: float) -> str:
    """json.dumps(number) for a float: repr, and NaN/Infinity/-Infinity as Python writes them."""
    if math.isfinite(number):
        return repr(number)
    return "NaN" if number != number else _NON_FINITE[number]


def original_string_text(text: str) -> str:
    """The JSON text of a string value -> what the original answers for it.

    The original stores float(value) whenever float() accepts the string (surrounding
    whitespace, underscores between digits, "nan", "inf", non-ASCII digits included) and
    answers json.dumps of that float; any other string stays the string it was.
    """
    answer = _answers.get(text)
    if answer is None:
        answer = _string_answer(text)
        if len(text) <= _REMEMBERED_CHARS:
            if len(_answers) >= _REMEMBERED_TEXTS:
                _answers.clear()
            _answers[text] = answer
    return answer


# Values repeat (a thermostat's "21.5", a switch's "on"): a remembered answer costs a dict
# lookup. Only short texts, and a bounded number of them, so the memory stays under 2 MB; a
# plain dict (emptied when full) costs less per miss than an LRU's bookkeeping.
_REMEMBERED_CHARS = 40
_REMEMBERED_TEXTS = 16_384
_answers: dict[str, str] = {}


def _string_answer(text: str) -> str:
    if "\\" in text or text[-1:] != '"':
        try:
            inner = _json_string.decode(text)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return text
    else:
        inner = text[1:-1]  # no escape: the JSON text is the string in quotes
    # Most strings are not numbers, and float()'s exception costs ten times a set lookup: a
    # string that starts with an ASCII character no float() input starts with is let go
    # here. Anything else (digits, spaces, signs, "inf", "nan", non-ASCII) goes to float().
    if inner[:1] in _NEVER_STARTS_A_FLOAT:
        return text
    try:
        return float_text(float(inner))
    except ValueError:
        return text


def original_item_value(value: object) -> object:
    """A decoded value inside a stored setpoint/schedule item -> the original's: a string
    float() accepts becomes that float's text, anything else is unchanged."""
    if isinstance(value, str):
        try:
            return float_text(float(value))
        except ValueError:
            return value
    return value


def answer_value(value_num: float | None, value_raw: str | None, exact: bool) -> str:
    """The stored columns -> the value's JSON text as answered: exactly as sent, or (the
    default) as the original answers it. Numbers keep their own text either way (`42`,
    2^53+1): only the spelling of a number differs from the original's there."""
    if value_raw is None:
        return "null" if value_num is None else repr(value_num)
    if exact or value_raw[0] != '"':
        return value_raw
    return original_string_text(value_raw)
