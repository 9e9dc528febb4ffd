"""The id and time limits every part shares, and the current time as the tables store it.

Ids are 32-bit serials in the database: a larger one cannot exist, so callers answer 404 (or
refuse) instead of letting the driver fail on an overflow. Times are stored as ms since 1970;
only the range a PostgreSQL timestamptz and a Python datetime share can be stored.
"""

from __future__ import annotations

import time

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT32 = range(INT32_MIN, INT32_MAX + 1)
# The largest id a 32-bit serial column can hold.
MAX_ID = INT32_MAX

# The range a PostgreSQL timestamptz and a Python datetime share; filters outside it clamp.
MIN_MS = -62_135_596_800_000
MAX_MS = 253_402_300_799_999


def now_ms() -> int:
    """The current time in ms since 1970, as the tables' ms columns hold it."""
    return int(time.time() * 1000)


__all__ = ["INT32", "INT32_MAX", "INT32_MIN", "MAX_ID", "MAX_MS", "MIN_MS", "now_ms"]
