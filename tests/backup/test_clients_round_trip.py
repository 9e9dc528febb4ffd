"""Backup and restore of every kind of value, with the original's backup script and with ours.

Two real `python -m readapi` processes, one on PostgreSQL and one on SQLite, each holding the
same values under a connector of its own. Each is backed up, then restored into the other:
PostgreSQL -> SQLite and SQLite -> PostgreSQL in one go. Run in the default mode (values
answered as the original answers them) and with BEMCOM_EXACT_VALUES=TRUE.

Ours asks for exact values (`values=exact`), so every kind comes back exactly as sent, in both
modes. The original script (tests/backup/original_script.py, written from the behaviour
issue 13 describes) reads each answered value back with float(); what that does to a value is
the script's own behaviour and would be the same against the Django original:
- an int becomes the float the original itself stores (42 -> 42.0, 2^53+1 -> 2^53 as a float);
- a string that float() does not read, and an object, come back as a string of their JSON
  text (`"hello"` -> `"\\"hello\\""`): the script sends the answered text as a new string;
- in exact mode also a numeric string: it is answered with its quotes (`"\\"22.30\\""`),
  which float() does not read, so it too becomes a string of a string. In the default mode
  it is answered as the number ("22.3") and comes back as that number: the answer is the same.
Floats, numeric strings (default mode), booleans, null, NaN and -Infinity round-trip.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from backup.layout import day_start_ms
from tests.backup import original_script
from tests.backup.test_round_trip import ADMIN, FIRST, Service, ok, run

SENT = {
    "float": "21.5",
    "int": "42",
    "numeric string": '"22.30"',
    "exponent string": '"1e3"',
    "NaN string": '"NaN"',
    "string": '"hello"',
    "non-ASCII string": '"Gr\\u00fc\\u00dfe \\u2713"',
    "true": "true",
    "false": "false",
    "null": "null",
    "NaN": "NaN",
    "-Infinity": "-Infinity",
    "large int": "9007199254740993",
    "object": '{"a": [1, 2.50]}',
}
T0 = day_start_ms(FIRST) + 3_600_000
KEY = "every_kind"
# What the original script's restore changes (see the module's docstring).
AS_FLOAT = {"int": "42.0", "large int": "9007199254740992.0"}
STRING_OF_A_STRING = {"string", "non-ASCII string", "object"}
NUMERIC_STRINGS = {"numeric string", "exponent string", "NaN string"}


def populate(service: Service, connector: str) -> None:
    item = {"connector": {"name": connector}, "key_in_connector": KEY, "type": "sensor"}
    dp_id = ok(service.client.post("/datapoint/", json=[item]), 201).json()[0]["id"]
    ok(service.client.put("/datapoint/", json=[{**item, "is_active": True}]))
    body = [{"value": text, "timestamp": T0 + i * 1000} for i, text in enumerate(SENT.values())]
    ok(service.client.put(f"/datapoint/{dp_id}/value/", json=body))


def answers(service: Service, connector: str, exact: bool | None = None) -> dict[str, str]:
    """label -> the value's text as answered: in the service's mode, or as asked."""
    found = [
        d
        for d in ok(service.client.get("/datapoint/")).json()
        if d["connector"]["name"] == connector and d["key_in_connector"] == KEY
    ]
    assert len(found) == 1, found
    params: dict = {"timestamp__gte": T0, "timestamp__lt": T0 + len(SENT) * 1000}
    if exact is not None:
        params["values"] = "exact" if exact else "original"
    rows = ok(service.client.get(f"/datapoint/{found[0]['id']}/value/", params=params)).json()
    by_time = {r["timestamp"]: r["value"] for r in rows}
    return {label: by_time.get(T0 + i * 1000, "<missing>") for i, label in enumerate(SENT)}


@pytest.fixture(params=[False, True], ids=["default", "exact"])
def services(request, pg_env, sqlite_env, tmp_path: Path):
    mode = {"BEMCOM_EXACT_VALUES": "TRUE" if request.param else "FALSE"}
    # Both start at once: most of a start is waiting on imports and migrations.
    with ThreadPoolExecutor(2) as pool:
        starting = [pool.submit(Service, {**env, **mode}, tmp_path) for env in (pg_env, sqlite_env)]
        wait(starting)
    started = [f.result() for f in starting if f.exception() is None]
    try:
        assert len(started) == 2, [f.exception() for f in starting]
        yield request.param, started[0], started[1]
    finally:
        for service in started:
            service.stop()


def our_tool(exact_mode: bool, postgres: Service, sqlite: Service, tmp_path: Path) -> None:
    pairs = [(postgres, sqlite, "pg-ours"), (sqlite, postgres, "sqlite-ours")]
    for source, _, connector in pairs:
        populate(source, connector)
        directory = tmp_path / connector
        directory.mkdir()
        dates = ["-s", str(FIRST), "-e", str(FIRST), "-d", str(directory)]
        assert run("-b", "-t", source.url, *dates) == 0
    for source, target, connector in pairs:
        dates = ["-s", str(FIRST), "-e", str(FIRST), "-d", str(tmp_path / connector)]
        assert run("-r", "-t", target.url, *dates) == 0
        assert answers(target, connector, exact=True) == SENT, connector
        # And so every answer in the service's mode is the source's.
        assert answers(target, connector) == answers(source, connector), connector
        if not exact_mode:
            assert answers(target, connector)["numeric string"] == "22.3"


def original_tool(exact_mode: bool, postgres: Service, sqlite: Service, tmp_path: Path) -> None:
    start, end = day_start_ms(FIRST), day_start_ms(FIRST + timedelta(days=1))
    pairs = [(postgres, sqlite, "pg-original"), (sqlite, postgres, "sqlite-original")]
    before = {}
    for source, _, connector in pairs:
        populate(source, connector)
        before[connector] = answers(source, connector)
        directory = tmp_path / connector
        directory.mkdir()
        with httpx.Client(base_url=source.url, auth=ADMIN, timeout=30) as api:
            # Every active datapoint: also those our tool restored before, left unchecked.
            assert original_script.backup(api, directory, start, end) >= len(SENT)
    corrupted = STRING_OF_A_STRING | (NUMERIC_STRINGS if exact_mode else set())
    for _, target, connector in pairs:
        with httpx.Client(base_url=target.url, auth=ADMIN, timeout=30) as api:
            assert original_script.restore(api, tmp_path / connector) >= len(SENT)
        was, after = before[connector], answers(target, connector)
        for label in SENT:
            if label in AS_FLOAT:
                expected = AS_FLOAT[label]
            elif label in corrupted:
                # The answered text, quotes included, sent back as a string.
                expected = json.dumps(was[label])
            else:
                expected = was[label]
            assert after[label] == expected, (connector, label, was[label])
        if not exact_mode:
            # The case of issue 13: a connector's "22.30" survives as the original keeps it.
            assert was["numeric string"] == after["numeric string"] == "22.3"
            assert after["NaN string"] == "NaN"
        # What the original would store for each body the script sent, read back exactly:
        # json.dumps(float) stays that number, json.dumps(a string float() refuses) that string.
        stored = answers(target, connector, exact=True)
        for label in SENT:
            assert stored[label] == json.dumps(original_script.native(was[label])), label


def test_both_tools_between_postgresql_and_sqlite(services, tmp_path: Path):
    exact_mode, postgres, sqlite = services
    our_tool(exact_mode, postgres, sqlite, tmp_path)
    original_tool(exact_mode, postgres, sqlite, tmp_path)
