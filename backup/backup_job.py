"""Backup: the metadata of every active datapoint, then one file per datapoint, kind and day.

Chunks already on disk are skipped, unless they were fetched before their day was over.
Setpoints and schedules exist for actuators only, so only actuators' are fetched.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import structlog

from backup.api import Api, DatapointMetadata, KindNotServed, decode_metadata
from backup.layout import KINDS, Chunk, days, metadata_path, write_bz2
from backup.progress import progress
from backup.state import BackupState

log = structlog.get_logger("backup")


class BackupSummary(msgspec.Struct):
    datapoints: int
    fetched: int
    skipped: int
    kinds_not_served: list[str]


def chunks_of(datapoints: list[DatapointMetadata], first: date, last: date) -> list[Chunk]:
    chunks = []
    # Day first: restoring in this order writes TimescaleDB chunks one after the other.
    for day in days(first, last):
        for dp in sorted(datapoints, key=lambda d: d.id):
            kinds = KINDS if dp.type == "actuator" else ("value",)
            chunks.extend(Chunk(dp.id, day, kind) for kind in kinds)
    return chunks


def run_backup(
    api: Api,
    directory: Path,
    first: date,
    last: date,
    workers: int = 4,
    show_progress: bool | None = None,
    today: date | None = None,
) -> BackupSummary:
    # Named by the UTC day, as the original names it.
    today = today or datetime.now(UTC).date()
    body = api.datapoints()
    datapoints = decode_metadata(body)
    write_bz2(metadata_path(directory, today), body)
    log.info("metadata_saved", datapoints=len(datapoints))

    state = BackupState(directory)
    todo = []
    skipped = 0
    for chunk in chunks_of(datapoints, first, last):
        path = chunk.relative_path
        if (directory / path).is_file() and not state.is_partial(path):
            skipped += 1
        else:
            todo.append(chunk)
    log.info("chunks", requested=len(todo) + skipped, existing=skipped)

    not_served: set[str] = set()

    def fetch(chunk: Chunk) -> None:
        if chunk.kind in not_served:
            return
        # Whether the day was over before the request: only then is the chunk final.
        complete = time.time() * 1000 >= chunk.end_ms
        try:
            data = api.messages(chunk.datapoint_id, chunk.kind, chunk.start_ms, chunk.end_ms)
        except KindNotServed as error:
            if chunk.kind not in not_served:
                not_served.add(chunk.kind)
                log.warning("kind_not_served", kind=chunk.kind, error=str(error))
            return
        write_bz2(directory / chunk.relative_path, data)
        state.backed_up(chunk.relative_path, complete)

    fetched = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(fetch, chunk) for chunk in todo]
        for future in progress(as_completed(futures), len(futures), "backup", show_progress):
            future.result()  # the first error stops the run; a rerun resumes
            fetched += 1
    return BackupSummary(len(datapoints), fetched, skipped, sorted(not_served))
