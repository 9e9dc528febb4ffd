"""The SQL builders: constant fragments only, request values always bound as parameters."""

from __future__ import annotations

import pytest

from readapi.errors import ApiError
from readapi.filters import Bucketing, TimeRange, parse_time_range
from readapi.sql import bucketed_history_sql, history_sql, last_sql

EVIL = "1; DROP TABLE datapoint; --"


def test_filters_become_parameters_not_sql():
    time_range = parse_time_range({"timestamp__gte": "1795840275488", "timestamp__lt": "2e12"})
    for postgres in (True, False):
        statement, params = history_sql(postgres, "value", time_range)
        assert "1795840275488" not in statement
        assert params == {"t_gte": 1795840275488, "t_lt": 2e12}
        assert "time >= %(t_gte)s" in statement and "time < %(t_lt)s" in statement


def test_bucket_function_per_backend():
    bucketing = Bucketing(900_000, "avg")
    timescale, _ = bucketed_history_sql(True, True, TimeRange(), bucketing)
    postgres, _ = bucketed_history_sql(True, False, TimeRange(), bucketing)
    sqlite, _ = bucketed_history_sql(False, False, TimeRange(), bucketing)
    assert "time_bucket(%(width)s, time, %(origin)s)" in timescale
    assert "date_bin(%(width)s, time, %(origin)s)" in postgres
    assert "date_bin" not in sqlite and "%(width)s" in sqlite
    first, _ = bucketed_history_sql(True, False, TimeRange(), Bucketing(900_000, "first"))
    assert "row_number() OVER" in first and "ORDER BY time)" in first


def test_last_sql_takes_ids_as_one_parameter():
    statement, _ = last_sql(True, "value", TimeRange(), with_ids=True)
    assert "= ANY(%(ids)s)" in statement and "d.is_active" in statement
    statement, _ = last_sql(False, "setpoint", TimeRange(), with_ids=True)
    assert "json_each(%(ids)s)" in statement


def test_text_that_is_no_number_never_reaches_sql():
    with pytest.raises(ApiError) as raised:
        parse_time_range({"timestamp__gte": EVIL})
    assert raised.value.body == {"timestamp__gte": ["Enter a number."]}
