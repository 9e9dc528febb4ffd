"""How the admin pages write times, ages and values (all stored as ms and JSON text)."""

from __future__ import annotations

from datetime import UTC, datetime

from readapi import render
from schema.limits import now_ms
from schema.values import answer_value

LOG_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
MAX_SHOWN_CHARS = 120


def when(ms: int | None) -> str:
    """An epoch-ms timestamp as UTC text; "" for none."""
    if ms is None:
        return ""
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(ms: int) -> str:
    """A span, coarsely: "4 s", "3 min", "2 h 5 min", "6 days"."""
    seconds = abs(ms) // 1000
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} days"


def age(ms: int | None, now: int | None = None) -> str:
    """ "12 s ago" or "in 30 s"; "" for none."""
    if ms is None:
        return ""
    delta = (now if now is not None else now_ms()) - ms
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(delta)}"


# The pages show values as the REST API answers them: `exact` is BEMCOM_EXACT_VALUES.


def value_text(value_num: float | None, value_raw: str | None, exact: bool) -> str:
    """A stored value's JSON text as the REST API answers it."""
    return answer_value(value_num, value_raw, exact)


def message_text(kind: str, stored: str, exact: bool) -> str:
    """A stored setpoint/schedule list as the REST API answers it; exactly: as stored."""
    if exact:
        return stored
    return render.encode(render.message_items(kind, stored)).decode()


def stored_value(value_num: float | None, value_raw: str | None, exact: bool) -> str:
    """A stored value as the REST API answers it, shortened for a table cell."""
    return shorten(value_text(value_num, value_raw, exact))


def shorten(text: str | None, limit: int = MAX_SHOWN_CHARS) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def level_name(level: int) -> str:
    return LOG_LEVELS.get(level, str(level))


TEMPLATE_HELPERS = {
    "when": when,
    "age": age,
    "now_ms": now_ms,
    "shorten": shorten,
    "level_name": level_name,
}
