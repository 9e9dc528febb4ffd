"""The REST calls the tool makes, and only those of CONTRACT.md:
GET/POST/PUT /datapoint/ and GET/PUT /datapoint/<id>/<value|setpoint|schedule>/."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec


class ApiError(RuntimeError):
    pass


class KindNotServed(ApiError):
    """The target answers 404 for a message kind: its extension flag is off."""


class DatapointMetadata(msgspec.Struct, kw_only=True):
    """A datapoint as GET /datapoint/ answers it; unknown fields are kept out of the way."""

    id: int
    connector: dict[str, Any]
    key_in_connector: str
    type: str

    @property
    def match_key(self) -> tuple[str, str, str]:
        return (self.connector["name"], self.key_in_connector, self.type)


_METADATA_LIST = msgspec.json.Decoder(list[DatapointMetadata])


def decode_metadata(body: bytes) -> list[DatapointMetadata]:
    return _METADATA_LIST.decode(body)


class Api:
    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        auth = (username, password or "") if username else None
        # Thread-safe, pooled: the backup fetches several chunks at once.
        self.client = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=16),
        )

    def close(self) -> None:
        self.client.close()

    def _check(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code in (401, 403):
            raise ApiError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
        if response.status_code >= 400:
            raise ApiError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
        return response

    def datapoints(self) -> bytes:
        """GET /datapoint/: the metadata of every active datapoint, as the body answered."""
        return self._check(self.client.get("/datapoint/"), "GET /datapoint/").content

    def messages(self, datapoint_id: int, kind: str, start_ms: int, end_ms: int) -> bytes:
        path = f"/datapoint/{datapoint_id}/{kind}/"
        # values=exact: each value's text exactly as it was sent (a string "22.30" stays a
        # string), so a restore stores it again exactly; an original Django service ignores
        # the parameter and answers as it always does.
        response = self.client.get(
            path,
            params={"timestamp__gte": start_ms, "timestamp__lt": end_ms, "values": "exact"},
        )
        if response.status_code == 404 and kind != "value":
            raise KindNotServed(f"GET {path}: 404 (is ACTIVATE_CONTROL_EXTENSION on?)")
        if response.status_code == 404:
            raise KindNotServed(f"GET {path}: 404 (is ACTIVATE_HISTORY_EXTENSION on?)")
        return self._check(response, f"GET {path}").content

    def put_messages(self, datapoint_id: int, kind: str, messages: list) -> tuple[int, int]:
        path = f"/datapoint/{datapoint_id}/{kind}/"
        response = self._check(self.client.put(path, json=messages), f"PUT {path}")
        summary = response.json()
        return summary["msgs_created"], summary["msgs_updated"]

    def create_datapoint(self, item: dict) -> httpx.Response:
        return self.client.post("/datapoint/", json=[item])

    def update_datapoint(self, item: dict) -> httpx.Response:
        return self.client.put("/datapoint/", json=[item])
