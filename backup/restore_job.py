"""Restore: datapoint metadata first (matched by connector name, key and type), then the
messages of every chunk file of the chosen days, mapped to the target's datapoint ids.

Datapoints missing on the target are created (POST /datapoint/ creates the connector too).
Restored datapoints are activated unless told otherwise: a backup holds active ones only,
as GET /datapoint/ lists no others.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import date
from pathlib import Path

import msgspec
import structlog

from backup.api import Api, ApiError, decode_metadata
from backup.layout import (
    DEFAULT_MAX_FILE_MB,
    KINDS,
    Chunk,
    FileRefused,
    days,
    fingerprint,
    latest_metadata_path,
    read_bz2,
)
from backup.progress import progress
from backup.state import BackupState

log = structlog.get_logger("restore")


class RestoreSummary(msgspec.Struct):
    datapoints: int
    datapoints_mapped: int
    chunks_restored: int
    chunks_skipped: int
    msgs_created: int
    msgs_updated: int
    # "<file>: <reason>" for every file not restored (too large, not bz2, not JSON).
    refused: list[str] = []


# The metadata that makes PUT .../value/ check values (numeric, range, allowed values).
CONSTRAINTS = {"data_format": "unknown", "min_value": None, "max_value": None}


def metadata_item(raw: dict, activate: bool, constrained: bool = True) -> dict:
    item = {key: value for key, value in raw.items() if key != "id"}
    if not constrained:
        item.update(CONSTRAINTS)
        item["allowed_values"] = None
    if activate:
        item["is_active"] = True
    return item


def restore_metadata(
    api: Api, raw_datapoints: list[dict], activate: bool, create: bool, constrained: bool
) -> dict[int, int]:
    """Backup datapoint id -> target datapoint id, for every datapoint that could be mapped.

    Restored in two passes: first without the constraints (constrained=False), so history
    that ingestd stored unchecked (a connector may send 35 to a datapoint whose maximum is
    30) is accepted by PUT; after the messages, with them.
    """
    target = {dp.match_key: dp.id for dp in decode_metadata(api.datapoints())}
    mapping: dict[int, int] = {}
    for raw in sorted(raw_datapoints, key=lambda d: d["id"]):
        item = metadata_item(raw, activate, constrained)
        key = (raw["connector"]["name"], raw["key_in_connector"], raw["type"])
        created = response = None
        if key not in target and create:
            created = response = api.create_datapoint(item)
        if response is None or response.status_code != 201:
            # Exists (perhaps inactive, which GET does not list): update it instead.
            response = api.update_datapoint(item)
        if response.status_code not in (200, 201):
            # Both errors: the creation's says why a new one was refused (a connector name
            # the broker refuses, say), the update's why no existing one was found.
            log.warning(
                "datapoint_not_restored",
                datapoint=key,
                error=response.text[:300],
                create_error=None if created is None else created.text[:300],
            )
            continue
        mapping[raw["id"]] = response.json()[0]["id"]
    return mapping


def run_restore(
    api: Api,
    directory: Path,
    first: date,
    last: date,
    workers: int = 2,
    batch_size: int = 10_000,
    activate: bool = True,
    create: bool = True,
    show_progress: bool | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_MB << 20,
) -> RestoreSummary:
    metadata_file = latest_metadata_path(directory)
    if metadata_file is None:
        raise ApiError(f"no datapoint_metadata_*.json.bz2 in {directory}: not a backup")
    log.info("metadata", file=metadata_file.name)
    try:
        raw_datapoints = msgspec.json.decode(read_bz2(metadata_file, max_file_bytes))
    except FileRefused as refused:
        raise ApiError(f"refused {refused}: nothing can be restored without it") from None
    except msgspec.DecodeError as error:
        raise ApiError(f"refused {metadata_file.name}: not JSON ({error})") from None
    mapping = restore_metadata(api, raw_datapoints, activate, create, constrained=False)
    log.info("metadata_restored", mapped=len(mapping), of=len(raw_datapoints))

    state = BackupState(directory)
    target = api.base_url
    todo: list[tuple[Chunk, str]] = []
    skipped = 0
    for day in days(first, last):
        for backup_id in sorted(mapping):
            for kind in KINDS:
                chunk = Chunk(backup_id, day, kind)
                path = directory / chunk.relative_path
                if not path.is_file():
                    continue  # a datapoint added later, or a sensor's setpoints
                stamp = fingerprint(path)
                if state.is_restored(target, chunk.relative_path, stamp):
                    skipped += 1
                else:
                    todo.append((chunk, stamp))

    refused: list[str] = []

    def restore(chunk: Chunk, stamp: str) -> tuple[int, int]:
        """Restore one file; a file refused costs only itself (the rest are restored)."""
        path = directory / chunk.relative_path
        try:
            messages = msgspec.json.decode(read_bz2(path, max_file_bytes))
        except FileRefused as error:
            reason = error.reason
        except msgspec.DecodeError as error:
            reason = f"not JSON ({error})"
        else:
            reason = None
        if reason is not None:
            log.error("file_refused", file=chunk.relative_path, reason=reason)
            refused.append(f"{chunk.relative_path}: {reason}")
            return 0, 0
        created = updated = 0
        target_id = mapping[chunk.datapoint_id]
        for start in range(0, len(messages), batch_size):
            c, u = api.put_messages(target_id, chunk.kind, messages[start : start + batch_size])
            created += c
            updated += u
        state.restored(target, chunk.relative_path, stamp)
        return created, updated

    created_total = updated_total = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(restore, chunk, stamp) for chunk, stamp in todo]
        for future in progress(as_completed(futures), len(futures), "restore", show_progress):
            created, updated = future.result()
            created_total += created
            updated_total += updated
    restore_metadata(api, raw_datapoints, activate, create=False, constrained=True)
    return RestoreSummary(
        len(raw_datapoints),
        len(mapping),
        len(todo) - len(refused),
        skipped,
        created_total,
        updated_total,
        sorted(refused),
    )
