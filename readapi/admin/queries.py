"""The reads and writes of the admin's custom pages, in SQLAlchemy Core (both backends)."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Connection, and_, case, desc, func, select, update

from readapi.admin.formatting import message_text, value_text
from schema import tables as t

RECENT_LOG_ENTRIES = 50
PLOT_POINTS = 500


class Heartbeat(msgspec.Struct, frozen=True):
    last: int
    next: int


class LogEntry(msgspec.Struct, frozen=True):
    timestamp: int
    level: int
    emitter: str | None
    msg: str


class ConnectorDatapoint(msgspec.Struct, frozen=True):
    id: int
    key_in_connector: str
    type: str
    is_active: bool
    example_value: str | None
    short_name: str | None
    unit: str
    last_time: int | None
    last_num: float | None
    last_raw: str | None


class ConnectorSummary(msgspec.Struct, frozen=True):
    id: int
    name: str
    n_datapoints: int
    n_active: int
    last_heartbeat: int | None
    next_heartbeat: int | None


class HistoryRow(msgspec.Struct, frozen=True):
    time: int
    text: str  # JSON as stored


def heartbeat(connection: Connection, connector_id: int) -> Heartbeat | None:
    h = t.connector_heartbeat.c
    row = connection.execute(
        select(h.last_heartbeat, h.next_heartbeat).where(h.connector_id == connector_id)
    ).first()
    return Heartbeat(*row) if row else None


def connector_overview(connection: Connection) -> list[ConnectorSummary]:
    c = t.connector.c
    d = t.datapoint.c
    h = t.connector_heartbeat.c
    counts = (
        select(
            d.connector_id,
            func.count().label("n"),
            func.sum(case((d.is_active, 1), else_=0)).label("active"),
        )
        .group_by(d.connector_id)
        .subquery()
    )
    rows = connection.execute(
        select(
            c.id,
            c.name,
            func.coalesce(counts.c.n, 0),
            func.coalesce(counts.c.active, 0),
            h.last_heartbeat,
            h.next_heartbeat,
        )
        .select_from(
            t.connector.outerjoin(counts, counts.c.connector_id == c.id).outerjoin(
                t.connector_heartbeat, h.connector_id == c.id
            )
        )
        .order_by(c.name)
    )
    return [ConnectorSummary(*row) for row in rows]


def log_entries(
    connection: Connection, connector_id: int, min_level: int, limit: int = RECENT_LOG_ENTRIES
) -> list[LogEntry]:
    c = t.connector_log_entry.c
    rows = connection.execute(
        select(c.timestamp, c.level, c.emitter, c.msg)
        .where(c.connector_id == connector_id, c.level >= min_level)
        .order_by(desc(c.timestamp), desc(c.id))
        .limit(limit)
    )
    return [LogEntry(*row) for row in rows]


def connector_datapoints(connection: Connection, connector_id: int) -> list[ConnectorDatapoint]:
    d = t.datapoint.c
    last = t.datapoint_last_value.c
    rows = connection.execute(
        select(
            d.id,
            d.key_in_connector,
            d.type,
            d.is_active,
            d.example_value,
            d.short_name,
            d.unit,
            last.time,
            last.value_num,
            last.value_raw,
        )
        .select_from(t.datapoint.outerjoin(t.datapoint_last_value, last.datapoint_id == d.id))
        .where(d.connector_id == connector_id)
        .order_by(d.type.desc(), d.key_in_connector)  # sensors first, then actuators
    )
    return [ConnectorDatapoint(*row) for row in rows]


def set_active(connection: Connection, connector_id: int, ids: list[int], active: bool) -> int:
    """Activate or deactivate these datapoints of this connector; how many changed.

    Only rows whose state changes are written, so the control-plane trigger (which makes
    ingestd republish the datapoint map) fires only for real changes.
    """
    d = t.datapoint.c
    result = connection.execute(
        update(t.datapoint)
        .where(and_(d.connector_id == connector_id, d.id.in_(ids), d.is_active != active))
        .values(is_active=active)
    )
    return result.rowcount


def control_plane_version(connection: Connection) -> int:
    return connection.execute(select(t.control_plane_version.c.version)).scalar_one()


def history_page(
    connection: Connection,
    datapoint_id: int,
    kind: str,
    before: int | None,
    limit: int,
    exact: bool,
) -> list[HistoryRow]:
    """One page of a datapoint's history, newest first, older than `before` (ms).

    Keyset pagination: a page deep in years of history costs what the first page costs.
    """
    table = t.HISTORY_TABLE[kind]
    c = table.c
    if kind == "value":
        columns: tuple[Any, ...] = (c.time, c.value_num, c.value_raw)
    else:
        columns = (c.time, c[kind])
    statement = select(*columns).where(c.datapoint_id == datapoint_id)
    if before is not None:
        statement = statement.where(c.time < before)
    rows = connection.execute(statement.order_by(desc(c.time)).limit(limit))
    if kind == "value":
        return [HistoryRow(row[0], value_text(row[1], row[2], exact)) for row in rows]
    return [HistoryRow(row[0], message_text(kind, row[1], exact)) for row in rows]


def recent_numeric_values(
    connection: Connection, datapoint_id: int, limit: int = PLOT_POINTS
) -> list[tuple[int, float]]:
    """The latest numeric values, oldest first, for the plot."""
    c = t.datapoint_value.c
    rows = connection.execute(
        select(c.time, c.value_num)
        .where(c.datapoint_id == datapoint_id, c.value_num.is_not(None))
        .order_by(desc(c.time))
        .limit(limit)
    ).all()
    return [(row[0], row[1]) for row in reversed(rows)]


def last_message(
    connection: Connection, datapoint_id: int, kind: str, exact: bool
) -> HistoryRow | None:
    if kind == "value":
        c = t.datapoint_last_value.c
        row = connection.execute(
            select(c.time, c.value_num, c.value_raw).where(c.datapoint_id == datapoint_id)
        ).first()
        if row is None:
            return None
        return HistoryRow(row[0], value_text(row[1], row[2], exact))
    table = t.datapoint_last_setpoint if kind == "setpoint" else t.datapoint_last_schedule
    row = connection.execute(
        select(table.c.time, table.c[kind]).where(table.c.datapoint_id == datapoint_id)
    ).first()
    return HistoryRow(row[0], message_text(kind, row[1], exact)) if row else None
