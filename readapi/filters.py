"""Query-string filters: parsed into typed values, with django-filter's error messages.

Pure functions: nothing here touches the database. Bad input raises ApiError 400 naming the
parameter, the way the original names a bad filter (`{"timestamp__gte": ["Enter a number."]}`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import msgspec

from readapi.errors import ApiError
from schema.limits import MAX_ID
from schema.tables import DATA_FORMATS, DATAPOINT_TYPES

ENTER_A_NUMBER = "Enter a number."
TIME_FILTERS = ("timestamp__gte", "timestamp__gt", "timestamp__lte", "timestamp__lt")
TIME_OPERATORS = {
    "timestamp__gte": ">=",
    "timestamp__gt": ">",
    "timestamp__lte": "<=",
    "timestamp__lt": "<",
}
TEXT_FILTERS = (
    ("connector__name", "connector_name"),
    ("key_in_connector", "key_in_connector"),
    ("short_name", "short_name"),
    ("description", "description"),
    ("data_format", "data_format"),
    ("unit", "unit"),
)
AGGREGATES = ("avg", "min", "max", "sum", "count", "first", "last")


class TimeRange(msgspec.Struct, frozen=True):
    """(operator, ms) pairs, e.g. ((">=", 1795840275488),)."""

    bounds: tuple[tuple[str, float], ...] = ()


class DatapointFilter(msgspec.Struct, frozen=True):
    ids: tuple[int, ...] | None = None
    exact: tuple[tuple[str, str], ...] = ()  # (column, value)
    icontains: tuple[tuple[str, str], ...] = ()
    type: str | None = None
    is_active: bool = True


class Bucketing(msgspec.Struct, frozen=True):
    width_ms: int
    agg: str = "avg"


def _given(params: Mapping[str, str], name: str) -> str | None:
    """A parameter's value; an empty value counts as absent, as in django-filter."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if "\x00" in value:
        raise ApiError(400, {name: ["Null characters are not allowed."]})
    return value


def parse_number(text: str) -> float | int | None:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_time_range(params: Mapping[str, str]) -> TimeRange:
    errors: dict[str, list[str]] = {}
    bounds = []
    for name in TIME_FILTERS:
        raw = _given(params, name)
        if raw is None:
            continue
        number = parse_number(raw)
        if number is None:
            errors[name] = [ENTER_A_NUMBER]
        else:
            bounds.append((TIME_OPERATORS[name], number))
    if errors:
        raise ApiError(400, errors)
    return TimeRange(tuple(bounds))


def parse_id_list(params: Mapping[str, str], name: str) -> tuple[int, ...] | None:
    """`1,2,101` -> (1, 2, 101); ids that cannot exist (beyond 32 bits) are dropped."""
    raw = _given(params, name)
    if raw is None:
        return None
    ids = []
    for part in raw.split(","):
        part = part.strip()
        if part == "":
            continue
        number = parse_number(part)
        if number is None or (isinstance(number, float) and not number.is_integer()):
            raise ApiError(400, {name: [ENTER_A_NUMBER]})
        number = int(number)
        if 0 < number <= MAX_ID:
            ids.append(number)
    return tuple(ids)


def _choice(params: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    raw = _given(params, name)
    if raw is not None and raw not in choices:
        raise ApiError(
            400,
            {name: [f"Select a valid choice. {raw} is not one of the available choices."]},
        )
    return raw


def _boolean(params: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _given(params, name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ApiError(400, {name: ["Select a valid choice. Use true or false."]})


def parse_datapoint_filter(params: Mapping[str, str]) -> DatapointFilter:
    exact = []
    icontains = []
    for name, column in TEXT_FILTERS:
        if name == "data_format":
            value = _choice(params, name, DATA_FORMATS)
        else:
            value = _given(params, name)
        if value is not None:
            exact.append((column, value))
        contains = _given(params, f"{name}__icontains")
        if contains is not None:
            icontains.append((column, contains))
    return DatapointFilter(
        ids=parse_id_list(params, "id__in"),
        exact=tuple(exact),
        icontains=tuple(icontains),
        type=_choice(params, "type", DATAPOINT_TYPES),
        is_active=_boolean(params, "is_active", True),
    )


# PostgreSQL's interval units of fixed length, in ms. Months and years are not fixed.
_UNIT_MS = {
    "microsecond": 0.001,
    "millisecond": 1,
    "ms": 1,
    "second": 1000,
    "sec": 1000,
    "s": 1000,
    "minute": 60_000,
    "min": 60_000,
    "m": 60_000,
    "hour": 3_600_000,
    "hr": 3_600_000,
    "h": 3_600_000,
    "day": 86_400_000,
    "d": 86_400_000,
    "week": 604_800_000,
    "w": 604_800_000,
}
_VARIABLE_UNITS = ("mon", "month", "y", "year", "decade", "century", "millennium")
_PART = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*([a-z]+)")
_CLOCK = re.compile(r"(\d+):(\d{2})(?::(\d{2}(?:\.\d+)?))?")
# A bucket narrower than this over a long history would answer millions of rows.
MIN_INTERVAL_MS = 1
MAX_INTERVAL_MS = 3650 * 86_400_000


def _unit_ms(unit: str) -> float | None:
    for candidate in (unit, unit.removesuffix("s")):
        if candidate in _UNIT_MS:
            return _UNIT_MS[candidate]
    return None


def parse_interval(text: str) -> int:
    """PostgreSQL interval text (`15 minutes`, `1 hour 30 minutes`, `01:30:00`) -> ms.

    Raises ValueError with a reason for what cannot be a fixed-width bucket.
    """
    source = text.strip().lower()
    if source.startswith("@"):
        source = source[1:].strip()
    if not source:
        raise ValueError("it is empty")
    total = 0.0
    position = 0
    clock = _CLOCK.fullmatch(source)
    if clock:
        hours, minutes, seconds = clock.groups()
        total = int(hours) * 3_600_000 + int(minutes) * 60_000 + float(seconds or 0) * 1000
    else:
        for match in _PART.finditer(source):
            if source[position : match.start()].strip(" ,"):
                raise ValueError(f"'{source[position : match.start()].strip()}' is not understood")
            amount, unit = float(match.group(1)), match.group(2)
            if unit.removesuffix("s") in _VARIABLE_UNITS or unit in _VARIABLE_UNITS:
                raise ValueError("months and years have no fixed length; use days or weeks")
            factor = _unit_ms(unit)
            if factor is None:
                raise ValueError(f"'{unit}' is not a unit of time")
            total += amount * factor
            position = match.end()
        if position == 0 or source[position:].strip():
            raise ValueError("expected a number and a unit, such as '15 minutes'")
    if not math.isfinite(total) or total != int(total):
        raise ValueError("it must be a whole number of milliseconds")
    width = int(total)
    if width < MIN_INTERVAL_MS:
        raise ValueError("it must be positive")
    if width > MAX_INTERVAL_MS:
        raise ValueError("it must be at most 3650 days")
    return width


def parse_bucketing(params: Mapping[str, str]) -> Bucketing | None:
    raw = _given(params, "interval")
    agg = _given(params, "agg")
    if raw is None:
        if agg is not None:
            raise ApiError(400, {"agg": ["agg needs an interval."]})
        return None
    try:
        width = parse_interval(raw)
    except ValueError as error:
        raise ApiError(400, {"interval": [f"Cannot use interval '{raw}': {error}."]}) from None
    agg = agg or "avg"
    if agg not in AGGREGATES:
        raise ApiError(
            400,
            {"agg": [f"Select a valid choice. {agg} is not one of: {', '.join(AGGREGATES)}."]},
        )
    return Bucketing(width, agg)
