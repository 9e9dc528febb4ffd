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

from schema.topics import MESSAGE_KINDS

METADATA_GLOB = "datapoint_metadata_*.json.bz2"
KINDS = MESSAGE_KINDS


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


DEFAULT_MAX_FILE_MB = 256
STEP_BYTES = 1 << 20


class FileRefused(Exception):
    """A backup file that is not restored: too large once decompressed, or not bz2."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason


def read_bz2(path: Path, max_bytes: int = DEFAULT_MAX_FILE_MB << 20) -> bytearray:
    """The decompressed content of a backup file, at most `max_bytes` of it.

    Decompressed in steps of 1 MiB, so a file that grows past the cap (a bz2 bomb: a few
    kB that expand to gigabytes) is refused having cost the cap, not the whole expansion.
    A bytearray: msgspec decodes it as it is, with no copy of the whole.
    """
    content = bytearray()
    try:
        with bz2.open(path, "rb") as stream:
            while step := stream.read(STEP_BYTES):
                if len(content) + len(step) > max_bytes:
                    raise FileRefused(
                        path, f"larger than {max_bytes >> 20} MiB decompressed (--max-file-mb)"
                    )
                content += step
    except (OSError, EOFError, ValueError) as error:  # unreadable, not bz2, or cut short
        raise FileRefused(path, f"not a readable bz2 file ({error})") from None
    return content


def fingerprint(path: Path) -> str:
    """Changes when a chunk is fetched again (a day that was not over yet)."""
    status = path.stat()
    return f"{status.st_size}:{status.st_mtime_ns}"
