"""The requests of BEMCom's Grafana data source, answered as it needs them, on both backends.

The data source asks `?format=json` (DRF's format override), with `interval=<n> <unit>` and
`offset=0 seconds` for aggregated plots, on values, setpoints and schedules, and multiplies
each answered value by a scaling factor in JavaScript (`point.value * scalingFactor`). A
datapoint of a connector built on BEMCom's connector template sends its numbers as JSON
strings (`{"value": "22.3"}`): the plot is empty unless those are answered as numbers.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from tests.readapi.conftest import Scene

T0 = 1_795_840_000_000
MINUTE = 60_000
# What the connector template sends: numbers as strings, as their sensors spell them.
SENT = ['"22.3"', '"22.30"', '"21"', '"2.1e1"', '" 23.5 "', "22.9", '"-0.5"', '"1_000"']
# JavaScript's Number(text), which `text * factor` applies: a trimmed decimal literal.
_JS_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Infinity")


def js_number(text: str) -> float:
    stripped = text.strip()
    if stripped == "":
        return 0.0
    if not _JS_DECIMAL.fullmatch(stripped):
        return math.nan
    return float(stripped)


def grafana_get(client, path: str, **params: str):
    response = client.get(path, params={"format": "json", **params})
    assert response.status_code == 200, (path, params, response.text)
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


@pytest.fixture
def stored(client, scene: Scene) -> None:
    values = [{"value": SENT[i % len(SENT)], "timestamp": T0 + i * 20_000} for i in range(3 * 30)]
    body = json.dumps(values)
    headers = {"Content-Type": "application/json"}
    assert client.put("/datapoint/2/value/", content=body, headers=headers).status_code == 200
    # A controller (or our POST) stores setpoints and schedules with numeric-string values.
    setpoints = [
        {
            "setpoint": [
                {
                    "from_timestamp": None,
                    "to_timestamp": None,
                    "preferred_value": '"21.50"',
                    "acceptable_values": ["21.50", "22"],
                }
            ],
            "timestamp": T0 + k * MINUTE,
        }
        for k in range(3)
    ]
    schedules = [
        {
            "schedule": [{"from_timestamp": None, "to_timestamp": None, "value": '"19.0"'}],
            "timestamp": T0 + k * MINUTE,
        }
        for k in range(3)
    ]
    for kind, messages in (("setpoint", setpoints), ("schedule", schedules)):
        answer = client.put(
            f"/datapoint/101/{kind}/", content=json.dumps(messages), headers=headers
        )
        assert answer.status_code == 200, answer.text


WINDOW = {"timestamp__gte": str(T0), "timestamp__lte": str(T0 + 30 * MINUTE)}


def test_values_setpoints_and_schedules_are_numbers(client, stored):
    for interval in ("20 seconds", "5 minutes", "1 hours", "1 days"):
        rows = grafana_get(
            client, "/datapoint/2/value/", interval=interval, offset="0 seconds", **WINDOW
        )
        assert rows
        for row in rows:
            number = js_number(row["value"]) * 1.0
            assert math.isfinite(number), (interval, row)
            assert -1 <= number <= 1000, (interval, row)
    for kind in ("setpoint", "schedule"):
        check_items(client, kind)


def test_raw_values_are_numbers_as_the_original_answers_them(client, stored):
    rows = grafana_get(client, "/datapoint/2/value/", **WINDOW)
    assert len(rows) == 3 * 30
    answered = [row["value"] for row in rows[: len(SENT)]]
    assert answered == ["22.3", "22.3", "21.0", "21.0", "23.5", "22.9", "-0.5", "1000.0"]
    assert all(math.isfinite(js_number(value)) for value in answered)
    last = grafana_get(client, "/datapoint/last_value/", datapoint__id__in="2")
    assert math.isfinite(js_number(last["msgs_by_datapoint_id"]["2"]["value"]))


def check_items(client, kind: str) -> None:
    value_key = "preferred_value" if kind == "setpoint" else "value"
    plain = grafana_get(client, f"/datapoint/101/{kind}/", **WINDOW)
    bucketed = grafana_get(
        client, f"/datapoint/101/{kind}/", interval="5 minutes", offset="0 seconds", **WINDOW
    )
    last = grafana_get(client, f"/datapoint/last_{kind}/")["msgs_by_datapoint_id"]["101"]
    for message in [*plain, *bucketed, last]:
        for item in message[kind]:
            assert math.isfinite(js_number(item[value_key])), message
            assert item[value_key] in ("21.5", "19.0")
            if kind == "setpoint":
                # Strings float() reads, answered as the original's floats.
                assert item["acceptable_values"] == ["21.5", "22.0"]


def test_exact_mode_answers_the_strings_as_sent(make_client, scene: Scene, stored):
    """The opt-in exact mode: what Grafana cannot plot, for users who must tell them apart."""
    client = make_client(scene, BEMCOM_EXACT_VALUES="TRUE")
    rows = grafana_get(client, "/datapoint/2/value/", **WINDOW)
    assert [row["value"] for row in rows[: len(SENT)]] == SENT
    assert math.isnan(js_number(rows[0]["value"]))
    # The aggregate is a number in both modes: it averages the stored float.
    bucketed = grafana_get(
        client, "/datapoint/2/value/", interval="1 days", offset="0 seconds", **WINDOW
    )
    default = grafana_get(
        client,
        "/datapoint/2/value/",
        interval="1 days",
        offset="0 seconds",
        values="original",
        **WINDOW,
    )
    assert bucketed == default
    setpoint = grafana_get(client, "/datapoint/last_setpoint/")["msgs_by_datapoint_id"]["101"]
    assert setpoint["setpoint"][0]["preferred_value"] == '"21.50"'
    # Asked per request, either way; anything else is a JSON 400 naming the parameter.
    original = grafana_get(client, "/datapoint/last_value/", values="original")
    assert original["msgs_by_datapoint_id"]["2"]["value"] == "22.3"  # the last sent: "22.30"
    for path in ("/datapoint/2/value/", "/datapoint/last_value/", f"/datapoint/2/value/{T0}/"):
        refused = client.get(path, params={"values": "raw"})
        assert refused.status_code == 400, path
        assert list(refused.json()) == ["values"]
