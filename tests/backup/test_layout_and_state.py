"""The backup's files and its resume state, without a server."""

from __future__ import annotations

import bz2
from datetime import date
from pathlib import Path

from backup.api import DatapointMetadata
from backup.backup_job import chunks_of
from backup.layout import (
    Chunk,
    day_start_ms,
    days,
    latest_metadata_path,
    metadata_path,
    read_bz2,
    write_bz2,
)
from backup.restore_job import metadata_item
from backup.state import STATE_FILE, BackupState


def test_days_include_both_ends_and_are_utc():
    assert days(date(2021, 8, 1), date(2021, 8, 1)) == [date(2021, 8, 1)]
    assert len(days(date(2020, 2, 27), date(2020, 3, 1))) == 4  # leap day included
    assert day_start_ms(date(1970, 1, 2)) == 86_400_000
    chunk = Chunk(7, date(2021, 8, 1), "value")
    assert chunk.end_ms - chunk.start_ms == 86_400_000
    assert chunk.start_ms == 1627776000000


def test_file_names_are_the_original_tools():
    chunk = Chunk(12, date(2021, 8, 1), "setpoint")
    assert chunk.relative_path == "2021-08-01/dpdata_12_2021-08-01_setpoint.json.bz2"
    assert metadata_path(Path("/b"), date(2021, 8, 2)).name == (
        "datapoint_metadata_2021-08-02.json.bz2"
    )


def test_latest_metadata_wins(tmp_path: Path):
    assert latest_metadata_path(tmp_path) is None
    for day in ("2021-08-02", "2021-12-01", "2021-09-30"):
        write_bz2(tmp_path / f"datapoint_metadata_{day}.json.bz2", b"[]")
    assert latest_metadata_path(tmp_path).name == "datapoint_metadata_2021-12-01.json.bz2"


def test_files_are_bz2_json_written_atomically(tmp_path: Path):
    path = tmp_path / "2021-08-01" / "x.json.bz2"
    write_bz2(path, b'[{"value":"1.5","timestamp":1}]')
    assert bz2.decompress(path.read_bytes()) == b'[{"value":"1.5","timestamp":1}]'
    assert read_bz2(path) == b'[{"value":"1.5","timestamp":1}]'
    assert [p.name for p in path.parent.iterdir()] == ["x.json.bz2"]  # no temporary left


def test_setpoints_and_schedules_only_for_actuators():
    sensor = DatapointMetadata(id=2, connector={"name": "c"}, key_in_connector="s", type="sensor")
    actuator = DatapointMetadata(
        id=1, connector={"name": "c"}, key_in_connector="a", type="actuator"
    )
    chunks = chunks_of([sensor, actuator], date(2021, 8, 1), date(2021, 8, 2))
    assert [(c.datapoint_id, c.day.day, c.kind) for c in chunks] == [
        (1, 1, "value"),
        (1, 1, "setpoint"),
        (1, 1, "schedule"),
        (2, 1, "value"),
        (1, 2, "value"),
        (1, 2, "setpoint"),
        (1, 2, "schedule"),
        (2, 2, "value"),
    ]


def test_state_survives_a_restart_and_a_torn_last_line(tmp_path: Path):
    state = BackupState(tmp_path)
    state.backed_up("a", complete=False)
    state.backed_up("b", complete=True)
    state.restored("http://t", "b", "10:20")
    with (tmp_path / STATE_FILE).open("ab") as handle:
        handle.write(b'{"event": "restored", "fi')  # killed mid-write
    again = BackupState(tmp_path)
    assert again.is_partial("a") and not again.is_partial("b")
    assert again.is_restored("http://t", "b", "10:20")
    assert not again.is_restored("http://t", "b", "11:20")  # the file changed since
    assert not again.is_restored("http://other", "b", "10:20")  # another target
    again.backed_up("a", complete=True)
    assert not BackupState(tmp_path).is_partial("a")


def test_metadata_item_drops_the_source_id_and_activates():
    raw = {"id": 5, "connector": {"name": "c"}, "key_in_connector": "k", "type": "sensor"}
    assert metadata_item(raw, activate=True) == {
        "connector": {"name": "c"},
        "key_in_connector": "k",
        "type": "sensor",
        "is_active": True,
    }
    assert "is_active" not in metadata_item(raw, activate=False)


def test_first_pass_metadata_lifts_the_value_checks():
    raw = {
        "id": 5,
        "connector": {"name": "c"},
        "key_in_connector": "k",
        "type": "actuator",
        "data_format": "discrete_text",
        "allowed_values": ["on", "off"],
        "min_value": 1.0,
        "max_value": 2.0,
        "unit": "x",
    }
    relaxed = metadata_item(raw, activate=False, constrained=False)
    assert relaxed["data_format"] == "unknown"
    assert relaxed["allowed_values"] is relaxed["min_value"] is relaxed["max_value"] is None
    assert relaxed["unit"] == "x"
    assert metadata_item(raw, activate=False) == {k: v for k, v in raw.items() if k != "id"}
