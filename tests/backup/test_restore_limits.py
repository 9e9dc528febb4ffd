"""Issue 12, finding 10: a restore reads each backup file in 1 MiB steps up to a cap, so a
small bz2 bomb costs the cap, not its expansion; the file is named, the rest restored, and
the exit code says that something was refused.

The bomb is real: 2 GiB of zeros in under 100 kB of bz2 (concatenated streams, as bzip2
itself reads them), made on the fly without ever holding more than 16 MiB. The restore runs
as its own process against a real `python -m readapi`, and its peak RSS is measured.
"""

from __future__ import annotations

import bz2
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from backup.layout import Chunk, FileRefused, day_start_ms, metadata_path, read_bz2, write_bz2
from tests.backup.test_round_trip import ADMIN, REPO, Service

DAY = date(2026, 2, 1)
BOMB_BYTES = 2 << 30
STREAM_BYTES = 16 << 20
# The restore's interpreter, httpx and the cap (256 MiB): nowhere near the bomb's 2 GiB.
MAX_PEAK_RSS_MIB = 512


# `python -m backup`, then its own peak RSS (of this process alone: RUSAGE_CHILDREN in the
# test would be the largest of every child the test run has waited for).
MEASURED_MAIN = """
import resource, sys
from backup.__main__ import main
code = main(sys.argv[1:])
print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def write_bomb(path: Path) -> int:
    """BOMB_BYTES of zeros as bz2; returns the file's size."""
    stream = bz2.compress(bytes(STREAM_BYTES), 9)
    with path.open("wb") as handle:
        for _ in range(BOMB_BYTES // STREAM_BYTES):
            handle.write(stream)
    return path.stat().st_size


def datapoint(dp_id: int, key: str) -> dict:
    return {
        "id": dp_id,
        "connector": {"name": "plant"},
        "key_in_connector": key,
        "type": "sensor",
        "is_active": True,
    }


@pytest.fixture
def target(sqlite_env: dict[str, str], tmp_path: Path) -> Iterator[Service]:
    service = Service(sqlite_env, tmp_path)
    yield service
    service.stop()


def test_read_bz2_stops_at_the_cap_and_names_the_file(tmp_path: Path):
    small = tmp_path / "small.json.bz2"
    write_bz2(small, b"[1]" * 1000)
    assert read_bz2(small, max_bytes=3000) == b"[1]" * 1000
    with pytest.raises(FileRefused) as refused:
        read_bz2(small, max_bytes=2999)
    assert str(refused.value).startswith("small.json.bz2: larger than")
    cut = tmp_path / "cut.json.bz2"
    cut.write_bytes(small.read_bytes()[:-10])
    with pytest.raises(FileRefused, match=r"cut\.json\.bz2: not a readable bz2 file"):
        read_bz2(cut)


def test_a_bz2_bomb_is_refused_by_name_and_the_rest_restored(target: Service, tmp_path: Path):
    directory = tmp_path / "backup"
    directory.mkdir()
    write_bz2(
        metadata_path(directory, DAY),
        json.dumps([datapoint(1, "good"), datapoint(2, "bomb"), datapoint(3, "junk")]).encode(),
    )
    start = day_start_ms(DAY)
    good = [{"value": str(i / 4), "timestamp": start + i * 60_000} for i in range(50)]
    write_bz2(directory / Chunk(1, DAY, "value").relative_path, json.dumps(good).encode())
    bomb = directory / Chunk(2, DAY, "value").relative_path
    assert write_bomb(bomb) < 100_000
    junk = directory / Chunk(3, DAY, "value").relative_path
    junk.write_bytes(b"BZh9 this is no bz2 stream")

    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            MEASURED_MAIN,
            "-r",
            "-t",
            target.url,
            "-s",
            str(DAY),
            "-e",
            str(DAY),
            "-d",
            str(directory),
            "-u",
            ADMIN[0],
            "-p",
            ADMIN[1],
            "--no-progress",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    errors = stderr.decode()
    peak_mib = int(errors.rsplit("PEAK_RSS_KIB ", 1)[1].split()[0]) / 1024
    print(f"restore with a 2 GiB bz2 bomb: peak RSS {peak_mib:.0f} MiB, exit {process.returncode}")
    assert process.returncode == 4, (stdout.decode()[-2000:], errors[-2000:])
    assert f"error: refused {Chunk(2, DAY, 'value').relative_path}: larger than 256 MiB" in errors
    assert f"error: refused {Chunk(3, DAY, 'value').relative_path}: not a readable bz2" in errors
    assert peak_mib < MAX_PEAK_RSS_MIB, peak_mib

    # The good file and all three datapoints were restored regardless.
    listed = {d["key_in_connector"]: d for d in target.client.get("/datapoint/").json()}
    assert set(listed) == {"good", "bomb", "junk"}
    restored = target.client.get(
        f"/datapoint/{listed['good']['id']}/value/",
        params={"timestamp__gte": start, "timestamp__lt": start + 86_400_000},
    ).json()
    assert sorted(restored, key=lambda m: m["timestamp"]) == good
    assert target.client.get(f"/datapoint/{listed['bomb']['id']}/value/").json() == []
