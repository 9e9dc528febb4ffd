"""How a datapoint value is stored: exact JSON back out, and a float for SQL averages.

A value arrives as JSON text. It is kept as two columns:
- `value_num`: the float of a finite number or numeric string ("18.0"), else NULL, so SQL can
  average, sum and bucket values without parsing;
- `value_raw`: the JSON text as it was sent, or NULL where it adds nothing: for JSON null, and
  for a number whose text is exactly `repr(value_num)` (the usual float), which keeps the
  row that grows narrow.
"""

from __future__ import annotations

import json
import math
import re

# A decimal number, as a string value may spell it: "18.0", "-1.5e3", " 42 ".
_NUMERIC_STRING = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")
_NUMBER_START = frozenset("-0123456789")


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
    if first == '"' and len(text) <= 66:
        inner = json.loads(text)
        if _NUMERIC_STRING.fullmatch(inner):
            number = float(inner)
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
