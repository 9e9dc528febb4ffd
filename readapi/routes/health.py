"""/health/live (the process answers) and /health/ready (database and broker reachable)."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from readapi.models import HealthOut
from readapi.render import encode
from readapi.routes.common import in_thread, json_bytes, services_of
from readapi.services import Services
from schema.settings import Settings


def _ready(services: Services) -> Response:
    try:
        services.database.ping()
        database = "ok"
    except Exception as error:  # any failure means "not ready", and the reason is shown
        database = f"unreachable: {type(error).__name__}"
    broker = "ok" if services.publisher.is_connected() else "unreachable"
    ok = database == "ok" and broker == "ok"
    body = HealthOut("ok" if ok else "unavailable", database=database, broker=broker)
    return json_bytes(encode(body), 200 if ok else 503)


def handlers(settings: Settings) -> list[HTTPRouteHandler]:
    # Probes are called without a trailing slash (as Kubernetes and compose write them); the
    # OpenAPI document lists them so (readapi.routes.docs).
    @get(
        "/health/live",
        name="health-live",
        tags=["Health"],
        summary="The process answers",
        opt={"trailing_slash": False},
    )
    async def live() -> Response[HealthOut]:
        return json_bytes(encode(HealthOut("ok")))

    @get(
        "/health/ready",
        name="health-ready",
        tags=["Health"],
        summary="Database and MQTT broker reachable (503 if not)",
        opt={"trailing_slash": False},
    )
    async def ready(request: Request) -> Response[HealthOut]:
        return await in_thread(_ready, services_of(request))

    return [live, ready]
