"""Where a backup keeps what, as the original tool lays it out:

    <dir>/datapoint_metadata_<YYYY-MM-DD of the backup>.json.bz2
    <dir>/<YYYY-MM-DD>/dpdata_<datapoint id>_<YYYY-MM-DD>_<value|setpoint|schedule>.json.bz2

Every file is bz2-compressed JSON, exactly the body the API answered.
"""

from __future__ import annotations

import bz2
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec

METADATA_GLOB = "datapoint_metadata_*.json.bz2"
KINDS = ("value", "setpoint", "schedule")


class Chunk(msgspec.Struct, frozen=True):
    """One datapoint's messages of one kind on one UTC day."""

    datapoint_id: int
    day: date
    kind: str

    @property
    def relative_path(self) -> str:
        return f"{self.day}/dpdata_{self.datapoint_id}_{self.day}_{self.kind}.json.bz2"

    @property
    def start_ms(self) -> int:
        return day_start_ms(self.day)

    @property
    def end_ms(self) -> int:
        return day_start_ms(self.day + timedelta(days=1))


def day_start_ms(day: date) -> int:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(start.timestamp()) * 1000


def days(first: date, last: date) -> list[date]:
    """Every day from first to last, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def metadata_path(directory: Path, today: date) -> Path:
    return directory / f"datapoint_metadata_{today}.json.bz2"


def latest_metadata_path(directory: Path) -> Path | None:
    found = sorted(directory.glob(METADATA_GLOB))
    return found[-1] if found else None


def write_bz2(path: Path, body: bytes) -> None:
    """Write atomically: an interrupted run never leaves a truncated file that looks done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(bz2.compress(body))
    os.replace(temporary, path)


def read_bz2(path: Path) -> bytes:
    return bz2.decompress(path.read_bytes())


def fingerprint(path: Path) -> str:
    """Changes when a chunk is fetched again (a day that was not over yet)."""
    status = path.stat()
    return f"{status.st_size}:{status.st_mtime_ns}"
