"""Helpers every route module uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from litestar import MediaType, Request, Response

from readapi.datapoints_store import DatapointMeta, get_datapoint
from readapi.errors import not_found
from readapi.services import Services
from schema.limits import MAX_ID

T = TypeVar("T")


def services_of(request: Request) -> Services:
    return request.app.state.services


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Blocking work (database, hashing) runs in a worker thread, off the event loop."""
    return await anyio.to_thread.run_sync(function, *args)


def json_bytes(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type=MediaType.JSON)


def datapoint_or_404(services: Services, datapoint_id: int) -> DatapointMeta:
    if not 0 < datapoint_id <= MAX_ID:
        raise not_found()
    with services.database.connect() as connection:
        found = get_datapoint(connection, datapoint_id)
    if found is None:
        raise not_found()
    return found


def permission(codename: str) -> dict:
    return {"permission": codename}
