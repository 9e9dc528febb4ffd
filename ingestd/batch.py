"""A batch of decoded rows, folded the way the database stores them.

Within a batch a repeated (datapoint, timestamp) keeps only its last message (a repeat
replaces), and the last-value tables get one row per datapoint: the newest. Doing this in
Python keeps every upsert statement free of rows that would conflict with each other.
"""

from __future__ import annotations

from ingestd.routing import AVAILABLE, HEARTBEAT, LOGS, SCHEDULE, SETPOINT, VALUE


class Batch:
    __slots__ = ("available", "heartbeats", "logs", "schedules", "setpoints", "values")

    def __init__(self) -> None:
        self.values: dict[tuple[int, int], tuple] = {}
        self.setpoints: dict[tuple[int, int], tuple] = {}
        self.schedules: dict[tuple[int, int], tuple] = {}
        self.logs: list[tuple] = []
        self.heartbeats: dict[int, tuple] = {}
        self.available: list[tuple] = []

    def add(self, kind: str, row: tuple) -> None:
        if kind == VALUE:
            self.values[(row[0], row[1])] = row
        elif kind == SETPOINT:
            self.setpoints[(row[0], row[1])] = row
        elif kind == SCHEDULE:
            self.schedules[(row[0], row[1])] = row
        elif kind == LOGS:
            self.logs.append(row)
        elif kind == HEARTBEAT:
            known = self.heartbeats.get(row[0])
            if known is None or known[1] <= row[1]:
                self.heartbeats[row[0]] = row
        elif kind == AVAILABLE:
            self.available.append(row)
        else:
            raise ValueError(f"unknown kind {kind!r}")

    def __len__(self) -> int:
        return (
            len(self.values)
            + len(self.setpoints)
            + len(self.schedules)
            + len(self.logs)
            + len(self.heartbeats)
            + len(self.available)
        )

    def newest_timestamp(self) -> int | None:
        stamps = [key[1] for rows in (self.values, self.setpoints, self.schedules) for key in rows]
        return max(stamps) if stamps else None


def newest_per_datapoint(rows: dict[tuple[int, int], tuple]) -> list[tuple]:
    """The row with the highest timestamp of each datapoint."""
    newest: dict[int, tuple] = {}
    for row in rows.values():
        known = newest.get(row[0])
        if known is None or known[1] <= row[1]:
            newest[row[0]] = row
    return list(newest.values())


def available_changes(
    entries: tuple, existing: dict[tuple[str, str], str | None]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(new datapoints, datapoints whose example value changed) of one announcement.

    `existing` maps (key_in_connector, type) to the stored example value. Only real changes
    are written: connectors repeat their announcement often, and an upsert per entry would
    burn a sequence number each time.
    """
    new, changed = [], []
    for key, kind, example in entries:
        if (key, kind) not in existing:
            new.append((key, kind, example))
            existing[(key, kind)] = example
        elif existing[(key, kind)] != example:
            changed.append((key, kind, example))
            existing[(key, kind)] = example
    return new, changed
