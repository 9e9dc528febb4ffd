"""SQL text for message reads, assembled from constant fragments only.

Everything that comes from a request is a bound parameter; what varies between requests is
only which constant fragments are joined (which filters are present, which aggregate). Times
are compared as timestamptz on PostgreSQL and as integer ms on SQLite, and always selected
as integer ms. The SQL uses psycopg's %(name)s style; Database.sql() adapts it for SQLite.
"""

from __future__ import annotations

from readapi.filters import Bucketing, TimeRange
from schema.tables import HISTORY_TABLE, LAST_TABLE
from schema.topics import SCHEDULE, SETPOINT, VALUE

# kind -> (history table, last table, payload columns)
_PAYLOAD_COLUMNS = {VALUE: "value_num, value_raw", SETPOINT: "setpoint", SCHEDULE: "schedule"}
MESSAGE_TABLES = {
    kind: (HISTORY_TABLE[kind].name, LAST_TABLE[kind].name, columns)
    for kind, columns in _PAYLOAD_COLUMNS.items()
}
_OPERATOR_PARAMETERS = {">=": "t_gte", ">": "t_gt", "<=": "t_lte", "<": "t_lt"}
# Buckets are aligned to Monday 2000-01-03 00:00 UTC, TimescaleDB's default origin, so a
# week starts on Monday and every backend puts a row into the same bucket.
BUCKET_ORIGIN_MS = 946_857_600_000


def ms_sql(postgres: bool, column: str) -> str:
    if postgres:
        # date_part works in float8, several times cheaper per row than extract's numeric;
        # a float8 holds epoch seconds to far below a millisecond, and ::bigint rounds.
        return f"(date_part('epoch', {column}) * 1000)::bigint"
    return column


# PostgreSQL's float8 text equals Python's repr() in this range, once ".0" is added to whole
# numbers (checked against repr for a few hundred thousand random doubles). Outside it the
# text is left NULL and Python writes repr(value_num) instead.
_PYTHON_REPR_SQL = (
    "CASE WHEN {v} = 0 OR (abs({v}) >= 1e-4 AND abs({v}) < 1e15) THEN "
    "CASE WHEN {v} = trunc({v}) THEN {v}::text || '.0' ELSE {v}::text END END"
)


def value_columns(postgres: bool, prefix: str = "") -> str:
    """(value_num, text) for render.encode_value_rows: on PostgreSQL the JSON text of the value is
    made by the server (value_num only sent where Python must format it); SQLite sends the
    stored columns."""
    num, raw = f"{prefix}value_num", f"{prefix}value_raw"
    if not postgres:
        return f"{num}, {raw}"
    text = _PYTHON_REPR_SQL.format(v=num)
    return (
        f"CASE WHEN {raw} IS NULL AND NOT ({num} = 0 OR (abs({num}) >= 1e-4 AND abs({num}) "
        f"< 1e15)) THEN {num} END, coalesce({raw}, CASE WHEN {num} IS NULL THEN 'null' "
        f"ELSE {text} END)"
    )


def time_conditions(time_range: TimeRange, column: str = "time") -> tuple[list[str], dict]:
    """(SQL conditions, parameters with ms values still to be converted by the caller)."""
    conditions = []
    params = {}
    for operator, ms in time_range.bounds:
        name = _OPERATOR_PARAMETERS[operator]
        conditions.append(f"{column} {operator} %({name})s")
        params[name] = ms
    return conditions, params


def history_sql(
    postgres: bool, kind: str, time_range: TimeRange, limited: bool = False
) -> tuple[str, dict]:
    table, _, columns = MESSAGE_TABLES[kind]
    if kind == "value":
        columns = value_columns(postgres)
    conditions, params = time_conditions(time_range)
    where = " AND ".join(["datapoint_id = %(dp)s", *conditions])
    statement = (
        f"SELECT {ms_sql(postgres, 'time')}, {columns} FROM {table} WHERE {where} ORDER BY time"
    )
    if limited:
        statement += " LIMIT %(limit)s"
    return statement, params


def last_sql(postgres: bool, kind: str, time_range: TimeRange, with_ids: bool) -> tuple[str, dict]:
    _, table, columns = MESSAGE_TABLES[kind]
    conditions, params = time_conditions(time_range, "l.time")
    conditions.insert(0, "d.is_active")
    if with_ids:
        conditions.append(
            "l.datapoint_id = ANY(%(ids)s)"
            if postgres
            else "l.datapoint_id IN (SELECT value FROM json_each(%(ids)s))"
        )
    if kind == "value":
        payload = value_columns(postgres, "l.")
    else:
        payload = ", ".join(f"l.{c.strip()}" for c in columns.split(","))
    statement = (
        f"SELECT l.datapoint_id, {ms_sql(postgres, 'l.time')}, {payload} "
        f"FROM {table} l JOIN datapoint d ON d.id = l.datapoint_id "
        f"WHERE {' AND '.join(conditions)} ORDER BY l.datapoint_id"
    )
    return statement, params


def bucket_sql(postgres: bool, timescale: bool) -> str:
    """The start of a row's bucket, as a time value of the dialect."""
    if timescale:
        return "time_bucket(%(width)s, time, %(origin)s)"
    if postgres:
        return "date_bin(%(width)s, time, %(origin)s)"
    # Floor, not truncation: `%` keeps the sign of the dividend in SQLite.
    return "(time - (((time - %(origin)s) % %(width)s) + %(width)s) % %(width)s)"


_NUMERIC_AGGREGATES = {
    "avg": "avg(value_num)",
    "min": "min(value_num)",
    "max": "max(value_num)",
    "sum": "sum(value_num)",
    "count": "count(*)",
}


def bucketed_history_sql(
    postgres: bool, timescale: bool, time_range: TimeRange, bucketing: Bucketing
) -> tuple[str, dict]:
    """One row per bucket: (bucket start ms, aggregate) or, for first/last, the exact value
    of the bucket's first/last row as (bucket start ms, value_num, value_raw)."""
    conditions, params = time_conditions(time_range)
    where = " AND ".join(["datapoint_id = %(dp)s", *conditions])
    bucket = bucket_sql(postgres, timescale)
    if bucketing.agg in _NUMERIC_AGGREGATES:
        statement = (
            f"SELECT {ms_sql(postgres, 'bucket')}, {_NUMERIC_AGGREGATES[bucketing.agg]} "
            f"FROM (SELECT {bucket} AS bucket, value_num FROM datapoint_value WHERE {where}) s "
            "GROUP BY bucket ORDER BY bucket"
        )
    else:
        order = "time" if bucketing.agg == "first" else "time DESC"
        statement = (
            f"SELECT {ms_sql(postgres, 'bucket')}, value_num, value_raw FROM ("
            f"SELECT {bucket} AS bucket, value_num, value_raw, "
            f"row_number() OVER (PARTITION BY {bucket} ORDER BY {order}) AS position "
            f"FROM datapoint_value WHERE {where}) s "
            "WHERE position = 1 ORDER BY bucket"
        )
    return statement, params
