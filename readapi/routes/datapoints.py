"""GET/POST/PUT /datapoint/: list, create and update datapoint metadata.

Datapoints are matched by connector name + key_in_connector + type. POST creates (and creates
a missing connector, as the original does for restoring backups), PUT updates; both are all
or nothing, with one error entry per item, aligned with the request.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, Parameter

from readapi import datapoints_store as store
from readapi.auth import permission_guard, principal_from
from readapi.body import parse_json_body
from readapi.datapoint_input import DatapointInput, datapoint_input
from readapi.errors import PERMISSION_DENIED, ApiError, detail, not_found
from readapi.filters import parse_datapoint_filter
from readapi.models import DatapointOut
from readapi.render import encode
from readapi.routes.common import datapoint_or_404, in_thread, json_bytes, services_of
from readapi.services import Services
from readapi.validation import Invalid, not_a_list
from schema.settings import Settings
from schema.topics import connector_name_problem

TAGS = ["Datapoint"]
Text = Parameter(required=False)


def _list(services: Services, params) -> Response:
    filters = parse_datapoint_filter(params)
    with services.database.connect() as connection:
        found = store.list_datapoints(connection, filters)
    return json_bytes(encode([d.to_out() for d in found]))


def _retrieve(services: Services, dp_id: int) -> Response:
    found = datapoint_or_404(services, dp_id)
    if not found.is_active:  # as the list, and the original's queryset: active ones only
        raise not_found()
    return json_bytes(encode(found.to_out()))


def _parse_items(data: Any) -> tuple[list[DatapointInput], bool]:
    """The request's datapoints, and whether it sent one object rather than a list."""
    single = isinstance(data, dict)
    raw_items = [data] if single else data
    if not isinstance(raw_items, list):
        raise ApiError(400, {"non_field_errors": [not_a_list(data)]})
    items = []
    errors = []
    for raw in raw_items:
        try:
            items.append(datapoint_input(raw))
            errors.append({})
        except Invalid as error:
            errors.append(error.detail)
    if any(errors):
        raise ApiError(400, errors[0] if single else errors)
    return items, single


def _query_text(item: DatapointInput) -> str:
    query = {
        "connector": item.connector_name,
        "key_in_connector": item.key_in_connector,
        "type": item.type,
    }
    return str(query)


def _check_is_active_allowed(request_principal, items: list[DatapointInput]) -> None:
    if any("is_active" in i.values for i in items) and not request_principal.has(
        "change_datapoint"
    ):
        raise detail(403, PERMISSION_DENIED)


def _write(services: Services, items: list[DatapointInput], create: bool) -> list[DatapointOut]:
    errors: list[dict] = []
    written: list[tuple[int, bool]] = []
    with services.database.begin() as connection:
        for item in items:
            connector_id = store.connector_id_by_name(connection, item.connector_name)
            if connector_id is None:
                if not create:
                    errors.append(
                        {
                            "connector": "No Connector found matching name: "
                            f"{ {'name': item.connector_name} }."
                        }
                    )
                    continue
                problem = connector_name_problem(item.connector_name)
                if problem:
                    errors.append({"connector": {"name": [problem]}})
                    continue
                connector_id = store.create_connector(connection, item.connector_name)
            existing = store.find_datapoint(
                connection, connector_id, item.key_in_connector, item.type
            )
            if create and existing is not None:
                errors.append({"datapoint": f"Datapoint exists already: {_query_text(item)}."})
                continue
            if not create and existing is None:
                errors.append(
                    {"datapoint": f"No datapoint found matching query: {_query_text(item)}."}
                )
                continue
            if create:
                datapoint_id = store.insert_datapoint(
                    connection,
                    connector_id,
                    {
                        "key_in_connector": item.key_in_connector,
                        "type": item.type,
                        "is_active": False,
                        "data_format": "unknown",
                        "description": "",
                        "unit": "",
                        **item.values,
                    },
                )
            else:
                datapoint_id = existing.id
                store.update_datapoint(connection, datapoint_id, item.values)
            errors.append({})
            written.append((datapoint_id, "is_active" in item.values))
        if any(errors):
            # Raising inside the transaction rolls every item back: all or nothing.
            raise ApiError(400, errors)
        return [
            store.get_datapoint(connection, datapoint_id).to_out(with_active)
            for datapoint_id, with_active in written
        ]


async def _create_or_update(request: Request, create: bool) -> Response:
    data = parse_json_body(await request.body(), request.headers.get("content-type"))
    items, single = _parse_items(data)
    _check_is_active_allowed(principal_from(request), items)
    try:
        result = await in_thread(_write, services_of(request), items, create)
    except ApiError as error:
        if single and isinstance(error.body, list) and len(error.body) == 1:
            error.body = error.body[0]
        raise
    status = 201 if create else 200
    return json_bytes(encode(result[0] if single else result), status)


def handlers(settings: Settings) -> list[HTTPRouteHandler]:
    @get(
        "/datapoint/",
        name="datapoint-list",
        guards=[permission_guard],
        opt={"permission": "view_datapoint"},
        tags=TAGS,
        summary="List active datapoints (is_active=false lists the inactive ones)",
    )
    async def list_datapoints(
        request: Request,
        id__in: str | None = Parameter(required=False, description="1,2,101"),
        connector__name: str | None = Text,
        connector__name__icontains: str | None = Text,
        key_in_connector: str | None = Text,
        key_in_connector__icontains: str | None = Text,
        short_name: str | None = Text,
        short_name__icontains: str | None = Text,
        description: str | None = Text,
        description__icontains: str | None = Text,
        type: str | None = Text,
        data_format: str | None = Text,
        data_format__icontains: str | None = Text,
        unit: str | None = Text,
        unit__icontains: str | None = Text,
        is_active: str | None = Parameter(required=False, description="true (default) or false"),
    ) -> Response[list[DatapointOut]]:
        return await in_thread(_list, services_of(request), request.query_params)

    @post(
        "/datapoint/",
        name="datapoint-create",
        guards=[permission_guard],
        opt={"permission": "add_datapoint", "request_struct": "datapoint-list"},
        tags=TAGS,
        status_code=201,
        summary="Create datapoints (matched by connector name, key_in_connector and type)",
    )
    async def create_datapoints(request: Request) -> Response[list[DatapointOut]]:
        return await _create_or_update(request, create=True)

    @put(
        "/datapoint/",
        name="datapoint-update",
        guards=[permission_guard],
        opt={"permission": "change_datapoint", "request_struct": "datapoint-list"},
        tags=TAGS,
        summary="Update datapoints (matched by connector name, key_in_connector and type)",
    )
    async def update_datapoints(request: Request) -> Response[list[DatapointOut]]:
        return await _create_or_update(request, create=False)

    @get(
        "/datapoint/{dp_id:int}/",
        name="datapoint-retrieve",
        guards=[permission_guard],
        opt={"permission": "view_datapoint"},
        tags=TAGS,
        summary="One active datapoint",
    )
    async def retrieve_datapoint(request: Request, dp_id: FromPath[int]) -> Response[DatapointOut]:
        return await in_thread(_retrieve, services_of(request), dp_id)

    return [list_datapoints, create_datapoints, update_datapoints, retrieve_datapoint]
