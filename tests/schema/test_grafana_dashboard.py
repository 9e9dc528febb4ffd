"""The "Building data" dashboard: every query of it, with its macros and template variables
expanded as Grafana's PostgreSQL data source expands them, run against PostgreSQL (both
flavours) holding known values; the numbers checked. The views of migration 0006 on SQLite too.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy import insert, text

from schema import tables as t
from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "building-data.json"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "building-data.yml"

MINUTE = 60_000
# 2026-01-05 10:00:00 UTC: a multiple of five minutes from any midnight, so 5-minute buckets
# start at 10:00 and 10:05 whatever the bucketing origin.
T0 = int(datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _interval_text(ms: int) -> str:
    """$__interval as Grafana writes it (1m, 5m, 30s, 2h)."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def expand(sql: str, variables: dict[str, list[str]], start: int, end: int, interval: int) -> str:
    """Grafana's PostgreSQL macros and template variables (multi-value: a quoted list)."""
    sql = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        lambda m: f"{m.group(1).strip()} BETWEEN '{_iso(start)}' AND '{_iso(end)}'",
        sql,
    )
    sql = sql.replace("$__timeFrom()", f"'{_iso(start)}'").replace("$__timeTo()", f"'{_iso(end)}'")
    sql = sql.replace("$__interval_ms", str(interval))
    sql = sql.replace("$__interval", _interval_text(interval))

    def variable(match: re.Match) -> str:
        values = variables[match.group(1) or match.group(2)]
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)

    sql = re.sub(r"\$\{(\w+)\}|\$(\w+)", variable, sql)
    assert "$" not in sql, sql
    return sql


@pytest.fixture
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _target(dashboard: dict, panel_type: str) -> dict:
    [panel] = [p for p in dashboard["panels"] if p["type"] == panel_type]
    [target] = panel["targets"]
    return target


def _variable(dashboard: dict, name: str) -> dict:
    [found] = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    return found


def _seed(env: dict[str, str]) -> dict[str, int]:
    engine = create_sqlalchemy_engine(load_settings(env))
    ids = {}
    with engine.begin() as c:
        for name in ("hall", "roof"):
            ids[name] = c.execute(
                insert(t.connector).values(name=name, date_added=0).returning(t.connector.c.id)
            ).scalar_one()
        for connector, key, short_name, unit, type_ in (
            ("hall", "temp", "T hall", "°C", "sensor"),
            ("hall", "co2", None, "ppm", "sensor"),
            ("roof", "sun", "Sun", "W/m2", "sensor"),
        ):
            ids[key] = c.execute(
                insert(t.datapoint)
                .values(
                    connector_id=ids[connector],
                    key_in_connector=key,
                    type=type_,
                    is_active=True,
                    data_format="generic_numeric",
                    description=f"{key} of the {connector}",
                    short_name=short_name,
                    unit=unit,
                )
                .returning(t.datapoint.c.id)
            ).scalar_one()
        rows = [
            (ids["temp"], T0, 20.0, "20"),
            (ids["temp"], T0 + 1 * MINUTE, 22.0, "22"),
            (ids["temp"], T0 + 5 * MINUTE, 30.0, "30"),
            (ids["temp"], T0 + 7 * MINUTE, 31.0, "31"),
            (ids["temp"], T0 + 8 * MINUTE, None, '"sensor offline"'),  # no number: not plotted
            (ids["temp"], T0 + 60 * MINUTE, 99.0, "99"),  # after the time range
            (ids["co2"], T0 + 2 * MINUTE, 400.0, "400"),
            (ids["co2"], T0 + 3 * MINUTE, 500.0, "500"),
            (ids["sun"], T0 + 4 * MINUTE, 700.0, "700"),
        ]
        c.execute(
            insert(t.datapoint_value),
            [
                {"datapoint_id": d, "time": ms, "value_num": num, "value_raw": raw}
                for d, ms, num, raw in rows
            ],
        )
        now = int(time.time() * 1000)
        c.execute(
            insert(t.datapoint_last_value),
            [
                {"datapoint_id": ids["temp"], "time": now - 60_000, "value_num": 21.5},
                {"datapoint_id": ids["co2"], "time": now - 3_600_000, "value_num": 450.0},
                {"datapoint_id": ids["sun"], "time": now - 1000, "value_num": 0.0},
            ],
        )
    engine.dispose()
    return ids


def _query(env: dict[str, str], sql: str) -> list[tuple]:
    with psycopg.connect(
        host=env["DJANGOAPIDB_HOST"],
        port=int(env["DJANGOAPIDB_PORT"]),
        user=env["DJANGOAPIDB_USER"],
        dbname=env["DJANGOAPIDB_DBNAME"],
    ) as conn:
        return conn.execute(sql).fetchall()


def test_every_dashboard_query_gives_the_known_numbers(pg_env, dashboard):
    ids = _seed(pg_env)
    start, end = T0 - 30 * MINUTE, T0 + 30 * MINUTE

    # Template variables: connectors, then the chosen connectors' datapoints (text, value).
    connectors_sql = expand(_variable(dashboard, "connector")["query"], {}, start, end, MINUTE)
    assert [r[0] for r in _query(pg_env, connectors_sql)] == ["hall", "roof"]
    datapoint_sql = _variable(dashboard, "datapoint")["query"]
    hall = expand(datapoint_sql, {"connector": ["hall"]}, start, end, MINUTE)
    assert _query(pg_env, hall) == [("hall/T hall", ids["temp"]), ("hall/co2", ids["co2"])]
    both = expand(datapoint_sql, {"connector": ["hall", "roof"]}, start, end, MINUTE)
    assert len(_query(pg_env, both)) == 3

    chosen = {"datapoint": [str(ids["temp"]), str(ids["co2"])], "connector": ["hall"]}
    series = _target(dashboard, "timeseries")
    assert series["format"] == "time_series"
    # 5-minute buckets: averages of the numeric values inside the time range.
    rows = _query(pg_env, expand(series["rawSql"], chosen, start, end, 5 * MINUTE))
    got = [(int(r[0].timestamp() * 1000), r[1], float(r[2])) for r in rows]
    assert got == [
        (T0, "hall/T hall", 21.0),
        (T0, "hall/co2", 450.0),
        (T0 + 5 * MINUTE, "hall/T hall", 30.5),
    ]
    # 1-minute buckets: each value its own bucket; "sun" was not chosen.
    rows = _query(pg_env, expand(series["rawSql"], chosen, start, end, MINUTE))
    assert [(int(r[0].timestamp() * 1000), float(r[2])) for r in rows if r[1] == "hall/T hall"] == [
        (T0, 20.0),
        (T0 + MINUTE, 22.0),
        (T0 + 5 * MINUTE, 30.0),
        (T0 + 7 * MINUTE, 31.0),
    ]
    # A range that takes in the late value too.
    rows = _query(pg_env, expand(series["rawSql"], chosen, start, T0 + 2 * 3_600_000, 3_600_000))
    assert [(r[1], float(r[2])) for r in rows] == [
        ("hall/T hall", (20 + 22 + 30 + 31) / 4),
        ("hall/co2", 450.0),
        ("hall/T hall", 99.0),
    ]

    table = _target(dashboard, "table")
    assert table["format"] == "table"
    rows = _query(pg_env, expand(table["rawSql"], chosen, start, end, MINUTE))
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("hall/T hall", 21.5, "°C"),
        ("hall/co2", 450.0, "ppm"),
    ]
    ages = {r[0]: float(r[5]) for r in rows}
    assert 59 <= ages["hall/T hall"] < 600, ages
    assert 3599 <= ages["hall/co2"] < 4200, ages


def test_the_views_on_sqlite(sqlite_env):
    ids = _seed(sqlite_env)
    engine = create_sqlalchemy_engine(load_settings(sqlite_env))
    with engine.connect() as c:
        values = c.execute(
            text(
                "SELECT time, label, unit, type, value_num FROM grafana_value "
                "WHERE datapoint_id = :d ORDER BY time"
            ),
            {"d": ids["temp"]},
        ).all()
        last = c.execute(
            text("SELECT label, value_num, age_seconds FROM grafana_last_value ORDER BY label")
        ).all()
    engine.dispose()
    assert [tuple(v) for v in values][:2] == [
        (T0, "hall/T hall", "°C", "sensor", 20.0),
        (T0 + MINUTE, "hall/T hall", "°C", "sensor", 22.0),
    ]
    assert len(values) == 6
    assert [(r[0], r[1]) for r in last] == [
        ("hall/T hall", 21.5),
        ("hall/co2", 450.0),
        ("roof/Sun", 0.0),
    ]
    assert 59 <= last[0][2] < 600 and 3599 <= last[1][2] < 4200


def test_the_datasource_is_the_one_the_dashboard_uses(dashboard):
    provisioned = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    [source] = provisioned
    assert source["type"] == "grafana-postgresql-datasource"
    for key in ("url", "user"):
        assert "${DJANGOAPIDB_" in source[key]
    assert source["jsonData"]["database"] == "${DJANGOAPIDB_DBNAME}"
    assert source["secureJsonData"]["password"] == "${DJANGOAPIDB_PASSWORD}"
    used = {p["datasource"]["uid"] for p in dashboard["panels"]}
    used |= {v["datasource"]["uid"] for v in dashboard["templating"]["list"]}
    assert used == {source["uid"]}
    assert dashboard["title"] == "Building data"


def test_the_rest_answer_infinity_parses_on_sqlite(sqlite_env):
    """README "Plotting in Grafana": Infinity asks /datapoint/<id>/value/ with
    interval=${__interval_ms} milliseconds and the dashboard's range in ms, a Bearer token,
    and reads the rows' `timestamp` (Unix ms) and `value` (a number in a JSON string)."""
    import warnings

    from litestar.testing import TestClient

    from readapi.accounts import create_token, create_user
    from readapi.app import create_app

    ids = _seed(sqlite_env)
    settings = load_settings(sqlite_env)
    engine = create_sqlalchemy_engine(settings)
    with engine.begin() as c:
        token = create_token(
            c, create_user(c, "grafana", "pw", permissions=("view_datapointvalue",))
        )
    engine.dispose()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the test client's host name
        client = TestClient(create_app(settings), base_url="http://testserver")
    with client:
        response = client.get(
            f"/datapoint/{ids['temp']}/value/",
            params={
                "format": "json",
                "interval": f"{5 * MINUTE} milliseconds",
                "timestamp__gte": str(T0 - 30 * MINUTE),
                "timestamp__lte": str(T0 + 30 * MINUTE),
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    rows = response.json()
    assert [(r["timestamp"], float(r["value"])) for r in rows] == [
        (T0, 21.0),
        (T0 + 5 * MINUTE, 30.5),
    ]
