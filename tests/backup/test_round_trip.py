"""Back up a populated service and restore it into a fresh database: every row compared.

Two real `python -m readapi` processes: the source on PostgreSQL, the target on SQLite (so
the restore also crosses backends). Only the backup tool talks to them, over HTTP.
"""

from __future__ import annotations

import bz2
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from backup.__main__ import main as backup_main
from backup.layout import day_start_ms
from backup.state import STATE_FILE
from tests.support.broker import free_port, wait_for_port

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("readapi") is None, reason="readapi is not importable yet"
)

REPO = Path(__file__).resolve().parents[2]
ADMIN = ("root", "s3cret")
FIRST, LAST = date(2026, 1, 1), date(2026, 1, 3)
KINDS = ("value", "setpoint", "schedule")
# Values that must come back exactly as sent (CONTRACT.md), one per message.
VALUES = [
    "21.5",
    "0.30000000000000004",
    "-1.25e-07",
    '"hello world"',
    '"Grüße ✓"',
    "true",
    "false",
    "null",
    "42",
    '"18.0"',
    "9007199254740993",
    "NaN",  # Python connectors send it; it must not break storage or the restore
    "-Infinity",
    '{"a": [1, 2.50]}',
]


class Service:
    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            **env,
            "BEMCOM_HTTP_PORT": str(self.port),
            "DJANGO_SUPERUSER_USERNAME": ADMIN[0],
            "DJANGO_SUPERUSER_PASSWORD": ADMIN[1],
            "DJANGO_SUPERUSER_EMAIL": "root@example.com",
            "LOGLEVEL": "WARNING",
        }
        self.log = (tmp / f"readapi-{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "readapi"], cwd=REPO, env=env, stdout=self.log, stderr=self.log
        )
        wait_for_port(self.port, timeout=60)
        self.client = httpx.Client(base_url=self.url, auth=ADMIN, timeout=30)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def source(pg_env: dict[str, str], tmp_path: Path) -> Iterator[Service]:
    service = Service(pg_env, tmp_path)
    yield service
    service.stop()


@pytest.fixture
def target(sqlite_env: dict[str, str], tmp_path: Path) -> Iterator[Service]:
    service = Service(sqlite_env, tmp_path)
    yield service
    service.stop()


def ok(response: httpx.Response, status: int = 200) -> httpx.Response:
    assert response.status_code == status, response.text
    return response


def populate(api: httpx.Client) -> dict[str, int]:
    """Datapoints whose history breaks their own constraints: ingestd stores what connectors
    send without the REST checks, so a restore must get such history in too."""
    metadata = [
        {
            "connector": {"name": "plant-a"},
            "key_in_connector": "temp",
            "type": "sensor",
            "is_active": True,
            "unit": "°C",
            "description": "Room",
            "short_name": "T1",
            "data_format": "generic_numeric",
        },
        {
            "connector": {"name": "plant-a"},
            "key_in_connector": "label",
            "type": "sensor",
            "is_active": True,
        },
        {
            "connector": {"name": "plant-b"},
            "key_in_connector": "valve",
            "type": "actuator",
            "is_active": True,
            "data_format": "discrete_text",
            "allowed_values": ["open", "closed"],
        },
        {
            # Same key, other type: matching must use the type too.
            "connector": {"name": "plant-b"},
            "key_in_connector": "valve",
            "type": "sensor",
            "is_active": True,
            "min_value": 0,
            "max_value": 100,
        },
    ]
    constraints = ("data_format", "allowed_values", "min_value", "max_value")
    unconstrained = [{k: v for k, v in m.items() if k not in constraints} for m in metadata]
    created = ok(api.post("/datapoint/", json=unconstrained), 201).json()
    ids = {match_key(d): d["id"] for d in created}
    for n, dp_id in enumerate(ids.values()):
        messages = []
        for day_offset in range(-1, 4):  # a day before and after the backed-up range
            day_ms = day_start_ms(FIRST + timedelta(days=day_offset))
            for i, value in enumerate(VALUES):
                messages.append({"value": value, "timestamp": day_ms + i * 3_600_000 + n})
        # The last millisecond of a day belongs to it, the first of the next to the next.
        messages.append({"value": "1.0", "timestamp": day_start_ms(LAST) + 86_400_000 - 1})
        ok(api.put(f"/datapoint/{dp_id}/value/", json=messages))
    valve = ids["plant-b/valve/actuator"]
    setpoints = [
        {
            "setpoint": [
                {
                    "from_timestamp": None,
                    "to_timestamp": day_start_ms(FIRST) + 7_200_000 * k,
                    "preferred_value": '"open"',
                    "acceptable_values": ['"open"', '"closed"'],
                }
            ],
            "timestamp": day_start_ms(FIRST) + 3_600_000 * k,
        }
        for k in range(1, 30)
    ]
    ok(api.put(f"/datapoint/{valve}/setpoint/", json=setpoints))
    schedules = [
        {
            "schedule": [
                {"from_timestamp": None, "to_timestamp": day_start_ms(FIRST), "value": '"open"'},
                {"from_timestamp": day_start_ms(FIRST), "to_timestamp": None, "value": "null"},
            ],
            "timestamp": day_start_ms(FIRST) + 5_400_000 * k,
        }
        for k in range(1, 30)
    ]
    ok(api.put(f"/datapoint/{valve}/schedule/", json=schedules))
    ok(api.put("/datapoint/", json=metadata))
    return ids


def match_key(d: dict) -> str:
    return f"{d['connector']['name']}/{d['key_in_connector']}/{d['type']}"


def by_key(api: httpx.Client) -> dict[str, dict]:
    return {match_key(d): d for d in ok(api.get("/datapoint/")).json()}


def history(api: httpx.Client, dp_id: int, kind: str, start: int, end: int) -> list[dict]:
    params = {"timestamp__gte": start, "timestamp__lt": end}
    rows = ok(api.get(f"/datapoint/{dp_id}/{kind}/", params=params)).json()
    return sorted(rows, key=lambda r: r["timestamp"])  # no order is promised


def run(*args: str) -> int:
    return backup_main([*args, "--no-progress", "-u", ADMIN[0], "-p", ADMIN[1]])


def test_backup_then_restore_into_a_fresh_database(
    source: Service, target: Service, tmp_path: Path
):
    ids = populate(source.client)
    directory = tmp_path / "backup"
    directory.mkdir()
    dates = ["-s", str(FIRST), "-e", str(LAST), "-d", str(directory)]

    assert run("-b", "-t", source.url, *dates) == 0
    chunk_files = sorted(p.relative_to(directory) for p in directory.glob("*/*.json.bz2"))
    # 3 days x (3 sensors x value + 1 actuator x 3 kinds)
    assert len(chunk_files) == 3 * 6
    assert [p.name for p in directory.glob("datapoint_metadata_*.json.bz2")]

    # A second run resumes: nothing is fetched again, files stay untouched.
    stamps = {p: (directory / p).stat().st_mtime_ns for p in chunk_files}
    assert run("-b", "-t", source.url, *dates) == 0
    assert {p: (directory / p).stat().st_mtime_ns for p in chunk_files} == stamps
    # A lost file is fetched again, and only that one.
    lost = chunk_files[0]
    (directory / lost).unlink()
    assert run("-b", "-t", source.url, *dates) == 0
    assert (directory / lost).is_file()
    assert {p: (directory / p).stat().st_mtime_ns for p in chunk_files if p != lost} == {
        p: s for p, s in stamps.items() if p != lost
    }

    assert by_key(target.client) == {}
    assert run("-r", "-t", target.url, *dates) == 0

    src, dst = by_key(source.client), by_key(target.client)
    assert set(dst) == set(src) == set(ids)
    strip = lambda d: {k: v for k, v in d.items() if k != "id"}  # noqa: E731
    for key in src:
        assert strip(dst[key]) == strip(src[key]), key

    start, end = day_start_ms(FIRST), day_start_ms(LAST + timedelta(days=1))
    compared = 0
    for key, dp in src.items():
        kinds = KINDS if dp["type"] == "actuator" else ("value",)
        for kind in kinds:
            expected = history(source.client, dp["id"], kind, start, end)
            assert expected, (key, kind)
            assert history(target.client, dst[key]["id"], kind, start, end) == expected
            compared += len(expected)
        # Outside the chosen days nothing was restored.
        assert history(target.client, dst[key]["id"], "value", 0, start) == []
        assert history(target.client, dst[key]["id"], "value", end, 2 * end) == []
    assert compared > 4 * 3 * len(VALUES)

    # A second restore resumes: it sends nothing (no PUT, so an edit on the target stays).
    # The edit is of a message the backup holds: a restore that sent it again would undo it.
    valve = dst["plant-b/valve/actuator"]["id"]
    backed_up = history(target.client, valve, "value", start, end)[0]
    in_backup = [
        m
        for m in history(source.client, src["plant-b/valve/actuator"]["id"], "value", start, end)
        if m["timestamp"] == backed_up["timestamp"]
    ]
    assert in_backup == [backed_up] and backed_up["value"] != '"closed"'
    edited = {"value": '"closed"', "timestamp": backed_up["timestamp"]}
    ok(target.client.put(f"/datapoint/{valve}/value/", json=[edited]))
    at_edit = (backed_up["timestamp"], backed_up["timestamp"] + 1)
    assert run("-r", "-t", target.url, *dates) == 0
    assert history(target.client, valve, "value", *at_edit) == [edited]
    # Without the record of what was sent, the restore sends it all again: the edit is undone.
    (directory / STATE_FILE).unlink()
    assert run("-r", "-t", target.url, *dates) == 0
    assert history(target.client, valve, "value", *at_edit) == [backed_up]


def test_a_day_not_over_yet_is_fetched_again(source: Service, tmp_path: Path):
    api = source.client
    created = ok(
        api.post(
            "/datapoint/",
            json=[{"connector": {"name": "c"}, "key_in_connector": "k", "type": "sensor"}],
        ),
        201,
    ).json()
    ok(api.put("/datapoint/", json=[{**created[0], "is_active": True}]))
    dp_id = created[0]["id"]
    today = datetime.now(UTC).date()
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    ok(api.put(f"/datapoint/{dp_id}/value/", json=[{"value": "1", "timestamp": now_ms - 5}]))
    directory = tmp_path / "b"
    directory.mkdir()
    args = ["-b", "-t", source.url, "-s", str(today), "-e", str(today), "-d", str(directory)]
    assert run(*args) == 0
    path = directory / str(today) / f"dpdata_{dp_id}_{today}_value.json.bz2"
    assert len(json.loads(bz2.decompress(path.read_bytes()))) == 1
    ok(api.put(f"/datapoint/{dp_id}/value/", json=[{"value": "2", "timestamp": now_ms - 4}]))
    assert run(*args) == 0
    assert len(json.loads(bz2.decompress(path.read_bytes()))) == 2
