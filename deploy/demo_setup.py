"""Register the demo connector and activate its datapoints through the REST API.

POST /datapoint/ creates the connector and the datapoints (active, with units and
descriptions); on a second start they exist already and PUT /datapoint/ updates them.
ingestd then publishes the connector's datapoint map and the demo starts sending values.
"""

from __future__ import annotations

import httpx

from demo.building import DATAPOINTS, DatapointInfo


def datapoint_metadata(connector_name: str, info: DatapointInfo) -> dict:
    return {
        "connector": {"name": connector_name},
        "key_in_connector": info.key,
        "type": info.type,
        "is_active": True,
        "data_format": info.data_format,
        "description": info.description,
        "unit": info.unit,
        "min_value": info.min_value,
        "max_value": info.max_value,
    }


def activate_demo_datapoints(client: httpx.Client, connector_name: str) -> dict[str, int]:
    """Create or update every demo datapoint as active; return key -> datapoint id."""
    ids: dict[str, int] = {}
    for info in DATAPOINTS:
        item = datapoint_metadata(connector_name, info)
        # One at a time: POST is all or nothing, and some may exist already (ingestd
        # creates inactive ones from the announcement, or an earlier run created them).
        response = client.post("/datapoint/", json=[item])
        if response.status_code != 201:
            response = client.put("/datapoint/", json=[item])
        if response.status_code not in (200, 201):
            raise RuntimeError(
                f"could not activate demo datapoint {info.key}: "
                f"HTTP {response.status_code} {response.text[:500]}"
            )
        ids[info.key] = response.json()[0]["id"]
    return ids
