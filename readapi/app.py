"""create_app(settings): the whole Litestar application, assembled in one place."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from readapi.admin.mount import handlers as admin_handlers
from readapi.body_deadline import BodyDeadlineMiddleware
from readapi.errors import EXCEPTION_HANDLERS
from readapi.hosts import AllowedHostsMiddleware, SecureCookiesMiddleware
from readapi.metrics import MetricsMiddleware, RequestMetrics
from readapi.routes import connectors, datapoints, docs, health, messages, metrics, tokens
from readapi.services import Services
from schema.settings import Settings

ROUTE_MODULES = (datapoints, messages, connectors, tokens, health, metrics, docs)


def create_app(settings: Settings) -> Litestar:
    """The application for one worker. Nothing connects until its lifespan starts."""
    request_metrics = RequestMetrics(settings.prometheus_multiproc_dir)
    services = Services(settings, request_metrics)
    route_handlers = [h for module in ROUTE_MODULES for h in module.handlers(settings)]
    route_handlers += admin_handlers(settings, services)
    root = Router(path=settings.root_path or "/", route_handlers=route_handlers)
    return Litestar(
        route_handlers=[root],
        state=State({"services": services}),
        on_startup=[lambda: services.start(), request_metrics.start],
        on_shutdown=[request_metrics.stop, lambda: services.stop()],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            DefineMiddleware(AllowedHostsMiddleware, allowed_hosts=settings.django_allowed_hosts),
            DefineMiddleware(MetricsMiddleware, metrics=request_metrics),
            DefineMiddleware(BodyDeadlineMiddleware, seconds=settings.readapi_body_timeout_seconds),
            *([DefineMiddleware(SecureCookiesMiddleware)] if settings.https_only else []),
        ],
        openapi_config=OpenAPIConfig(
            title="BEMCom API",
            version="1.0.0",
            description="REST API of BEMCom: datapoints and their messages.",
            path=f"{settings.root_path}/_openapi",
            render_plugins=[JsonRenderPlugin()],
        ),
        debug=settings.django_debug,
        # Litestar's own logging setup would replace the root handler with its text format;
        # its records go through schema/log_setup.py's structlog renderer instead.
        logging_config=None,
        request_max_body_size=settings.readapi_max_body_bytes,
    )
