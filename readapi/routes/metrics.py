"""/metrics/: Prometheus exposition of all workers, for users allowed to view datapoints."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from readapi.auth import permission_guard
from readapi.routes.common import in_thread, services_of
from schema.settings import Settings


def handlers(settings: Settings) -> list[HTTPRouteHandler]:
    @get(
        "/metrics/",
        name="metrics",
        guards=[permission_guard],
        opt={"permission": "view_datapoint"},
        tags=["Metrics"],
        summary="Prometheus metrics",
    )
    async def metrics(request: Request) -> Response[str]:
        body, content_type = await in_thread(services_of(request).metrics.exposition)
        return Response(body, media_type=content_type)

    return [metrics]
