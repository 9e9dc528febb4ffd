"""A client that behaves as BEMCom's backup script (`ems_utils/simple_db_backup.py`) does.

The script itself is not available offline; this is written from issue 13's description of
its behaviour, not from its code:
- backup: the metadata of the datapoints (GET /datapoint/) and each datapoint's values
  (GET /datapoint/<id>/value/ over a time range) are saved to files as answered;
- restore: each value of a file is made native, `None`, `True`, `False`, `float(value)`, or
  else the raw string as it is, and PUT back as `json.dumps(native)`.

Only values are handled (the script's concern is the value history). Datapoints missing on
the target are created and activated over REST, matched by connector name, key and type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

METADATA_FILE = "datapoint_metadata.json"


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.text}")
    return response


def backup(api: httpx.Client, directory: Path, start_ms: int, end_ms: int) -> int:
    """Every active datapoint's values in [start_ms, end_ms) into files; returns how many."""
    datapoints = _ok(api.get("/datapoint/")).json()
    (directory / METADATA_FILE).write_text(json.dumps(datapoints))
    count = 0
    for datapoint in datapoints:
        params = {"timestamp__gte": start_ms, "timestamp__lt": end_ms}
        values = _ok(api.get(f"/datapoint/{datapoint['id']}/value/", params=params)).json()
        (directory / f"dpdata_{datapoint['id']}_value.json").write_text(json.dumps(values))
        count += len(values)
    return count


def native(value: Any) -> Any:
    """The script's reading of a value as answered over REST."""
    if value is None or value == "null":
        return None
    if value == "true":
        return True
    if value == "false":
        return False
    try:
        return float(value)
    except ValueError:
        return value


def _target_ids(api: httpx.Client, datapoints: list[dict]) -> dict[int, int]:
    def key(d: dict) -> tuple[str, str, str]:
        return (d["connector"]["name"], d["key_in_connector"], d["type"])

    found = {key(d): d["id"] for d in _ok(api.get("/datapoint/")).json()}
    mapping = {}
    for datapoint in datapoints:
        item = {k: v for k, v in datapoint.items() if k != "id"}
        if key(datapoint) not in found:
            created = _ok(api.post("/datapoint/", json=[item])).json()[0]
            _ok(api.put("/datapoint/", json=[{**item, "is_active": True}]))
            found[key(datapoint)] = created["id"]
        mapping[datapoint["id"]] = found[key(datapoint)]
    return mapping


def restore(api: httpx.Client, directory: Path) -> int:
    """PUT every saved value back; returns how many were sent."""
    datapoints = json.loads((directory / METADATA_FILE).read_text())
    mapping = _target_ids(api, datapoints)
    sent = 0
    for datapoint in datapoints:
        values = json.loads((directory / f"dpdata_{datapoint['id']}_value.json").read_text())
        body = [
            {"value": json.dumps(native(v["value"])), "timestamp": v["timestamp"]} for v in values
        ]
        _ok(api.put(f"/datapoint/{mapping[datapoint['id']]}/value/", json=body))
        sent += len(body)
    return sent
