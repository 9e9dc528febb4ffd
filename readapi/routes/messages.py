"""Value, setpoint and schedule messages of a datapoint: history, last, publish, upsert.

Routes exist only where ACTIVATE_CONTROL_EXTENSION / ACTIVATE_HISTORY_EXTENSION allow them,
as in the original: value POST and last_value always; setpoint/schedule POST and last_* with
control; value GET/PUT/DELETE with history; setpoint/schedule GET/PUT/DELETE with both.
"""

# No `from __future__ import annotations` here: the handlers are built in a closure per kind,
# and Litestar must resolve their annotations (Response[out]) at runtime, where `out` lives.
import json
from typing import Any

from litestar import Request, Response, delete, get, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, Parameter
from litestar.response import Stream

from readapi import reads, writes
from readapi.auth import permission_guard
from readapi.body import parse_json_body
from readapi.errors import ApiError, detail, not_found
from readapi.filters import parse_bucketing, parse_id_list, parse_time_range
from readapi.models import (
    LastSchedules,
    LastSetpoints,
    LastValues,
    PutMsgSummary,
    ScheduleOut,
    SetpointOut,
    ValueOut,
)
from readapi.publisher import BrokerUnavailable
from readapi.render import encode
from readapi.routes.common import datapoint_or_404, in_thread, json_bytes, services_of
from readapi.services import Services
from readapi.validation import validate_many, validate_one
from schema.limits import MAX_ID, MAX_MS, MIN_MS
from schema.settings import Settings
from schema.topics import broker_refusal, datapoint_topic

MODELS = {
    "value": "datapointvalue",
    "setpoint": "datapointsetpoint",
    "schedule": "datapointschedule",
}
OUT = {"value": ValueOut, "setpoint": SetpointOut, "schedule": ScheduleOut}
LAST_OUT = {"value": LastValues, "setpoint": LastSetpoints, "schedule": LastSchedules}
TAGS = {
    "value": ["Datapoint Value"],
    "setpoint": ["Datapoint Setpoint"],
    "schedule": ["Datapoint Schedule"],
}
ACTUATOR_ONLY = ["This message can only be written for an actuator datapoint."]

TimestampParam = Parameter(required=False, description="Milliseconds since 1970-01-01 UTC.")
ValuesParam = Parameter(
    required=False,
    description="How values are answered: `original` (as the Django original answers them: a "
    "string that Python's float() reads comes back as that float) or `exact` (as sent). "
    "Default: `exact` when BEMCOM_EXACT_VALUES=TRUE, else `original`. BEMCom's own backup "
    "tool asks for `exact`.",
)
VALUES_CHOICES = {"exact": True, "original": False}


def exact_values(services: Services, params) -> bool:
    """Whether this request's values are answered exactly: `?values=`, else the setting."""
    chosen = params.get("values")
    if chosen is None:
        return services.settings.exact_values
    if chosen not in VALUES_CHOICES:
        raise ApiError(400, {"values": ['Select "exact" or "original".']})
    return VALUES_CHOICES[chosen]


def stored_text(kind: str, validated: dict, sent: Any) -> str:
    """The JSON text stored for a message of a PUT: the value text as sent (exact), or the
    validated list as the original stores it."""
    if kind == "value":
        raw = sent.get("value")
        if isinstance(raw, str):
            return raw.strip()
        return json.dumps(validated["value"])
    return json.dumps(validated[kind])


def _history(services: Services, kind: str, dp_id: int, params) -> Response:
    time_range = parse_time_range(params)
    bucketing = parse_bucketing(params) if kind == "value" else None
    exact = exact_values(services, params)
    if bucketing is not None or not services.database.postgres:
        datapoint_or_404(services, dp_id)
    else:
        # The hot path: the datapoint check and the query share one connection.
        if not 0 < dp_id <= MAX_ID:
            raise not_found()
        found, whole = reads.small_history(services.database, kind, dp_id, time_range, exact)
        if not found:
            raise not_found()
        if whole is not None:
            return json_bytes(whole)
    if bucketing is not None:
        return json_bytes(
            reads.bucketed_values(services.database, dp_id, time_range, bucketing, exact)
        )
    reader = reads.open_history(services.database, kind, dp_id, time_range)
    body, rest = reads.first_chunk_or_stream(reader, kind, exact)
    if body is not None:
        return json_bytes(body)
    return Stream(rest, media_type="application/json")


def _last(services: Services, kind: str, params) -> Response:
    time_range = parse_time_range(params)
    ids = parse_id_list(params, "datapoint__id__in")
    exact = exact_values(services, params)
    return json_bytes(reads.last_messages(services.database, kind, time_range, ids, exact))


def _publish(services: Services, kind: str, dp_id: int, data: Any) -> Response:
    dp = datapoint_or_404(services, dp_id)
    if dp.type != "actuator":
        raise ApiError(400, ACTUATOR_ONLY)
    validated = validate_one(kind, data, dp)
    refused = broker_refusal(dp.connector_name)
    if refused:
        # The broker would drop readapi's connection (and whatever else it was sending).
        raise detail(
            409,
            f"This datapoint's connector has a name the MQTT broker refuses, so nothing can "
            f"be published to it: {refused} Rename the connector.",
        )
    # What the original publishes: Python's json.dumps of the validated message.
    payload = json.dumps(validated)
    try:
        services.publisher.publish(
            datapoint_topic(dp.connector_name, dp.id, kind),
            payload.encode(),
            qos=0,
            retain=kind != "value",
        )
    except BrokerUnavailable as error:
        raise detail(503, f"The message broker is not reachable: {error}") from None
    writes.store_published(
        services.database,
        kind,
        dp.id,
        validated["timestamp"],
        json.dumps(validated[kind]),
        history=services.settings.activate_history_extension,
    )
    return json_bytes(encode(validated), 201)


def _upsert(services: Services, kind: str, dp_id: int, data: Any) -> Response:
    dp = datapoint_or_404(services, dp_id)
    validated = validate_many(kind, data, dp)
    messages = [
        (item["timestamp"], stored_text(kind, item, sent))
        for item, sent in zip(validated, data, strict=True)
    ]
    with services.database.begin() as connection:
        created, updated = writes.upsert_history(
            connection, services.database, kind, dp.id, messages
        )
    return json_bytes(encode(PutMsgSummary(created, updated)))


def _not_found_unless_storable(timestamp: int) -> None:
    """No message can exist outside the range a timestamp column holds; binding such a
    number would be a driver error (an overflow), not a 404."""
    if not MIN_MS <= timestamp <= MAX_MS:
        raise not_found()


def _retrieve(services: Services, kind: str, dp_id: int, timestamp: int, params) -> Response:
    exact = exact_values(services, params)
    datapoint_or_404(services, dp_id)
    _not_found_unless_storable(timestamp)
    body = reads.one_message(services.database, kind, dp_id, timestamp, exact)
    if body is None:
        raise not_found()
    return json_bytes(body)


def _delete(services: Services, kind: str, dp_id: int, timestamp: int) -> None:
    datapoint_or_404(services, dp_id)
    _not_found_unless_storable(timestamp)
    if not writes.delete_message(services.database, kind, dp_id, timestamp):
        raise not_found()


async def _body(request: Request) -> Any:
    return parse_json_body(await request.body(), request.headers.get("content-type"))


def message_handlers(kind: str, settings: Settings) -> list[HTTPRouteHandler]:
    model = MODELS[kind]
    tags = TAGS[kind]
    out = OUT[kind]
    control = settings.activate_control_extension
    history = settings.activate_history_extension
    handlers: list[HTTPRouteHandler] = []
    publishable = kind == "value" or control
    with_history = history and (kind == "value" or control)

    if publishable:

        @post(
            f"/datapoint/{{dp_id:int}}/{kind}/",
            name=f"{kind}-publish",
            guards=[permission_guard],
            opt={"permission": f"add_{model}", "request_struct": kind},
            tags=tags,
            status_code=201,
            summary=f"Publish a {kind} message to an actuator on MQTT",
        )
        async def publish(request: Request, dp_id: FromPath[int]) -> Response[out]:
            services = services_of(request)
            # The original looks the datapoint up and refuses sensors before reading the body.
            await in_thread(_check_actuator, services, dp_id)
            data = await _body(request)
            return await in_thread(_publish, services, kind, dp_id, data)

        handlers.append(publish)

        @get(
            f"/datapoint/last_{kind}/",
            name=f"last-{kind}",
            guards=[permission_guard],
            opt={"permission": f"view_{model}"},
            tags=tags,
            summary=f"The latest {kind} message of every active datapoint",
        )
        async def last(
            request: Request,
            datapoint__id__in: str | None = Parameter(required=False, description="1,2,3"),
            timestamp__gte: str | None = TimestampParam,
            timestamp__gt: str | None = TimestampParam,
            timestamp__lte: str | None = TimestampParam,
            timestamp__lt: str | None = TimestampParam,
            values: str | None = ValuesParam,
        ) -> Response[LAST_OUT[kind]]:
            return await in_thread(_last, services_of(request), kind, request.query_params)

        handlers.append(last)

    if with_history:

        @get(
            f"/datapoint/{{dp_id:int}}/{kind}/",
            name=f"{kind}-history",
            guards=[permission_guard],
            opt={"permission": f"view_{model}"},
            tags=tags,
            summary=f"The {kind} messages of a datapoint",
        )
        async def history_list(
            request: Request,
            dp_id: FromPath[int],
            timestamp__gte: str | None = TimestampParam,
            timestamp__gt: str | None = TimestampParam,
            timestamp__lte: str | None = TimestampParam,
            timestamp__lt: str | None = TimestampParam,
            interval: str | None = Parameter(
                required=False,
                description="(value only) a PostgreSQL interval, e.g. '15 minutes': "
                "one aggregated row per bucket.",
            ),
            agg: str | None = Parameter(
                required=False,
                description="(value only) avg (default), min, max, sum, count, first, last.",
            ),
            values: str | None = ValuesParam,
        ) -> Response[list[out]]:
            return await in_thread(
                _history, services_of(request), kind, dp_id, request.query_params
            )

        @put(
            f"/datapoint/{{dp_id:int}}/{kind}/",
            name=f"{kind}-upsert",
            guards=[permission_guard],
            opt={"permission": f"change_{model}", "request_struct": f"{kind}-list"},
            tags=tags,
            summary=f"Create or replace many {kind} messages (restore)",
        )
        async def upsert(request: Request, dp_id: FromPath[int]) -> Response[PutMsgSummary]:
            data = await _body(request)
            return await in_thread(_upsert, services_of(request), kind, dp_id, data)

        @delete(
            f"/datapoint/{{dp_id:int}}/{kind}/{{timestamp:int}}/",
            name=f"{kind}-delete",
            guards=[permission_guard],
            opt={"permission": f"delete_{model}"},
            tags=tags,
            status_code=204,
            summary=f"Delete the {kind} message of a timestamp",
        )
        async def remove(request: Request, dp_id: FromPath[int], timestamp: FromPath[int]) -> None:
            await in_thread(_delete, services_of(request), kind, dp_id, timestamp)

        @get(
            f"/datapoint/{{dp_id:int}}/{kind}/{{timestamp:int}}/",
            name=f"{kind}-retrieve",
            guards=[permission_guard],
            opt={"permission": f"view_{model}"},
            tags=tags,
            summary=f"The {kind} message of a timestamp",
        )
        async def retrieve(
            request: Request,
            dp_id: FromPath[int],
            timestamp: FromPath[int],
            values: str | None = ValuesParam,
        ) -> Response[out]:
            return await in_thread(
                _retrieve, services_of(request), kind, dp_id, timestamp, request.query_params
            )

        handlers += [history_list, upsert, remove, retrieve]
    return handlers


def _check_actuator(services: Services, dp_id: int) -> None:
    if datapoint_or_404(services, dp_id).type != "actuator":
        raise ApiError(400, ACTUATOR_ONLY)


def handlers(settings: Settings) -> list[HTTPRouteHandler]:
    return [h for kind in MODELS for h in message_handlers(kind, settings)]
