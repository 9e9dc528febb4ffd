"""A batch of decoded rows, folded the way the database stores them.

Within a batch a repeated (datapoint, timestamp) keeps only its last message (a repeat
replaces), and the last-value tables get one row per datapoint: the newest. Doing this in
Python keeps every upsert statement free of rows that would conflict with each other.
"""

from __future__ import annotations

from collections.abc import Callable

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


def isolation_units(
    decoded: list[tuple[str, tuple]],
) -> tuple[list[tuple[str, tuple]], list[int]]:
    """(units, owner of each unit): the rows of `decoded` with every announcement split into
    one unit per entry; owner is the index in `decoded` a unit came from."""
    units: list[tuple[str, tuple]] = []
    owners: list[int] = []
    for index, (kind, row) in enumerate(decoded):
        if kind == AVAILABLE and len(row[1]) > 1:
            connector_id, entries = row
            units.extend((kind, (connector_id, (entry,))) for entry in entries)
            owners.extend(index for _ in entries)
        else:
            units.append((kind, row))
            owners.append(index)
    return units, owners


def isolate(
    units: list[tuple[str, tuple]], attempt: Callable[[Batch], Exception | None]
) -> list[tuple[int, Exception]]:
    """(index, error) of every unit the database refuses, by bisection.

    `attempt` writes a sub-batch under a savepoint and returns the permanent error that
    rolled it back, or None (a transient error propagates: the caller retries all later).
    A refused sub-batch is halved until each refused unit stands alone: k bad rows among n
    cost about 2k log2(n) savepoints, not n.
    """
    refused: list[tuple[int, Exception]] = []

    def visit(start: int, end: int) -> None:
        batch = Batch()
        for kind, row in units[start:end]:
            batch.add(kind, row)
        error = attempt(batch)
        if error is None:
            return
        if end - start == 1:
            refused.append((start, error))
            return
        middle = (start + end) // 2
        visit(start, middle)
        visit(middle, end)

    if units:
        visit(0, len(units))
    return refused
