"""`interval` and `agg` on each backend, against buckets computed here in Python."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from readapi.filters import parse_interval
from readapi.sql import BUCKET_ORIGIN_MS
from tests.readapi.conftest import Scene

START = 1_795_840_000_000
MINUTE = 60_000


def bucket_of(ms: int, width: int) -> int:
    return ms - (ms - BUCKET_ORIGIN_MS) % width


def original_answer(value: object) -> str:
    """What the original answers for a value: a string float() reads is stored as that float."""
    if isinstance(value, str):
        try:
            return json.dumps(float(value))
        except ValueError:
            pass
    return json.dumps(value)


def expected(
    messages: list[tuple[int, object]], width: int, agg: str, exact: bool = False
) -> list[dict]:
    buckets: dict[int, list[tuple[int, object]]] = {}
    for ms, value in sorted(messages):
        buckets.setdefault(bucket_of(ms, width), []).append((ms, value))
    rows = []
    for start, members in sorted(buckets.items()):
        numbers = [
            float(v)
            for _, v in members
            if (isinstance(v, int | float) and not isinstance(v, bool))
            or (isinstance(v, str) and v.replace(".", "", 1).lstrip("-").isdigit())
        ]
        if agg == "count":
            result: object = len(members)
        elif agg in ("first", "last"):
            chosen = members[0 if agg == "first" else -1][1]
            text = json.dumps(chosen) if exact else original_answer(chosen)
            rows.append({"value": text, "timestamp": start})
            continue
        elif not numbers:
            result = None
        else:
            result = {"avg": statistics.fmean, "min": min, "max": max, "sum": sum}[agg](numbers)
        rows.append({"value": result, "timestamp": start})
    return rows


@pytest.fixture
def messages(client, scene: Scene) -> list[tuple[int, object]]:
    generator = random.Random(7)
    values: list[object] = []
    for _ in range(400):
        kind = generator.random()
        if kind < 0.7:
            values.append(round(generator.uniform(-50, 50), 3))
        elif kind < 0.8:
            values.append(generator.randint(-5, 5))
        elif kind < 0.9:
            values.append(f"{generator.uniform(0, 10):.2f}")  # numeric string: averaged
        elif kind < 0.95:
            values.append("off")  # text: ignored by numeric aggregates
        else:
            values.append(None)
    times = sorted(generator.sample(range(START, START + 3 * 86_400_000, 1000), len(values)))
    pairs = list(zip(times, values, strict=True))
    body = [{"value": json.dumps(v), "timestamp": t} for t, v in pairs]
    response = client.put(
        "/datapoint/2/value/",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert response.json() == {"msgs_created": 400, "msgs_updated": 0}
    return pairs


INTERVALS = {
    "15 minutes": 15 * MINUTE,
    "1 hour": 60 * MINUTE,
    "1 day": 1440 * MINUTE,
    "1 week": 7 * 1440 * MINUTE,
}
AGGREGATES = ("avg", "min", "max", "sum", "count", "first", "last")
QUOTED_DIGIT = {'"' + digit for digit in "0123456789"}


def test_buckets_match_python(client, messages):
    """Every aggregate over every width; one data set per backend keeps this quick.

    Numeric aggregates average the stored float whichever way values are answered; first and
    last answer the bucket's value as the original would (a numeric string as its float), or
    exactly with `values=exact`.
    """
    low, high = START, START + 2 * 86_400_000
    window = [(t, v) for t, v in messages if low <= t < high]
    quoted_numbers = {False: 0, True: 0}
    for interval, width in INTERVALS.items():
        for agg, exact in [(a, False) for a in AGGREGATES] + [(a, True) for a in AGGREGATES]:
            params = {"interval": interval, "timestamp__gte": low, "timestamp__lt": high}
            if agg != "avg":  # avg is the default
                params["agg"] = agg
            if exact:
                params["values"] = "exact"
            response = client.get("/datapoint/2/value/", params=params)
            assert response.status_code == 200, response.text
            got = response.json()
            want = expected(window, width, agg, exact)
            assert [r["timestamp"] for r in got] == [r["timestamp"] for r in want], (interval, agg)
            if agg in ("first", "last"):
                quoted_numbers[exact] += sum(r["value"][:2] in QUOTED_DIGIT for r in got)
            for g, w in zip(got, want, strict=True):
                if agg in ("first", "last"):
                    assert g["value"] == w["value"], (interval, agg)
                elif w["value"] is None:
                    assert g["value"] == "null", (interval, agg)
                else:
                    assert float(g["value"]) == pytest.approx(w["value"], rel=1e-9, abs=1e-9), (
                        interval,
                        agg,
                    )
    # Numeric strings were first or last of some buckets: the two modes answered them apart.
    assert quoted_numbers[False] == 0
    assert quoted_numbers[True] > 0


@pytest.mark.parametrize(
    "interval", ["1 month", "2 years", "abc", "0 minutes", "-5 minutes", "15", "1 fortnight"]
)
def test_bad_interval_is_a_json_400(client, scene: Scene, interval):
    response = client.get("/datapoint/2/value/", params={"interval": interval})
    assert response.status_code == 400
    assert list(response.json()) == ["interval"]
    assert interval in response.json()["interval"][0]


def test_bad_agg_is_a_json_400(client, scene: Scene):
    response = client.get("/datapoint/2/value/", params={"interval": "1 hour", "agg": "median"})
    assert response.status_code == 400
    assert list(response.json()) == ["agg"]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("15 minutes", 900_000),
        ("1 hour", 3_600_000),
        ("1 day", 86_400_000),
        ("1 week", 604_800_000),
        ("1 hour 30 minutes", 5_400_000),
        ("01:30:00", 5_400_000),
        ("90 secs", 90_000),
        ("2 weeks", 1_209_600_000),
        ("500 milliseconds", 500),
    ],
)
def test_parse_interval(text, ms):
    assert parse_interval(text) == ms
