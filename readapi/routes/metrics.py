"""/metrics/: Prometheus exposition of all workers, for users allowed to view datapoints."""

from __future__ import annotations

from litestar import MediaType, Request, Response, get
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
        media_type=MediaType.TEXT,
        summary="Prometheus metrics",
    )
    async def metrics(request: Request) -> Response[str]:
        body, content_type = await in_thread(services_of(request).metrics.exposition)
        # Litestar adds the charset itself; prometheus_client's type names it already.
        media_type = "; ".join(
            part.strip()
            for part in content_type.split(";")
            if not part.strip().startswith("charset")
        )
        return Response(body, media_type=media_type)

    return [metrics]
