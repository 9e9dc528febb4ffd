"""/connector/: list, create and delete connectors (beyond the original, for scripting what
the admin UI does). ingestd follows the change itself (control_plane_version triggers)."""

from __future__ import annotations

from litestar import Request, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from sqlalchemy.exc import IntegrityError

from readapi import datapoints_store as store
from readapi.auth import permission_guard
from readapi.body import parse_json_body
from readapi.connector_removal import remove_connector
from readapi.errors import ApiError, detail, not_found
from readapi.models import ConnectorOut
from readapi.publisher import BrokerUnavailable
from readapi.render import encode
from readapi.routes.common import in_thread, json_bytes, services_of
from readapi.services import Services
from readapi.validation import MISSING, Invalid, char_field, require_dict
from schema.settings import Settings
from schema.topics import connector_name_problem, connector_topics

TAGS = ["Connector"]


def connector_out(connector_id: int, name: str) -> ConnectorOut:
    return ConnectorOut(id=connector_id, name=name, **connector_topics(name))


def _list(services: Services) -> Response:
    with services.database.connect() as connection:
        rows = store.list_connectors(connection)
    return json_bytes(encode([connector_out(i, n) for i, n in rows]))


def _create(services: Services, data) -> Response:
    try:
        body = require_dict(data)
        name = char_field(body.get("name", MISSING), allow_null=False)
    except Invalid as error:
        detail_ = error.detail
        raise ApiError(400, detail_ if isinstance(detail_, dict) else {"name": detail_}) from None
    problem = connector_name_problem(name)
    if problem:
        raise ApiError(400, {"name": [problem]})
    try:
        with services.database.begin() as connection:
            if store.connector_id_by_name(connection, name) is not None:
                raise ApiError(400, {"name": ["connector with this name already exists."]})
            connector_id = store.create_connector(connection, name)
    except IntegrityError:  # created concurrently
        raise ApiError(400, {"name": ["connector with this name already exists."]}) from None
    return json_bytes(encode(connector_out(connector_id, name)), 201)


def _delete(services: Services, connector_id: int) -> None:
    try:
        removed = remove_connector(services, connector_id)
    except BrokerUnavailable as error:
        raise detail(503, f"The message broker is not reachable: {error}") from None
    if removed is None:
        raise not_found()


def handlers(settings: Settings) -> list[HTTPRouteHandler]:
    @get(
        "/connector/",
        name="connector-list",
        guards=[permission_guard],
        opt={"permission": "view_connector"},
        tags=TAGS,
        summary="List connectors with their MQTT topics",
    )
    async def list_connectors(request: Request) -> Response[list[ConnectorOut]]:
        return await in_thread(_list, services_of(request))

    @post(
        "/connector/",
        name="connector-create",
        guards=[permission_guard],
        opt={"permission": "add_connector", "request_struct": "connector"},
        tags=TAGS,
        status_code=201,
        summary="Create a connector",
    )
    async def create_connector(request: Request) -> Response[ConnectorOut]:
        data = parse_json_body(await request.body(), request.headers.get("content-type"))
        return await in_thread(_create, services_of(request), data)

    @delete(
        "/connector/{connector_id:int}/",
        name="connector-delete",
        guards=[permission_guard],
        opt={"permission": "delete_connector"},
        tags=TAGS,
        status_code=204,
        summary="Delete a connector, after publishing its empty datapoint map",
    )
    async def delete_connector(request: Request, connector_id: FromPath[int]) -> None:
        await in_thread(_delete, services_of(request), connector_id)

    return [list_connectors, create_connector, delete_connector]
