"""The OpenAPI document at /schema/ and Swagger UI at /, as the original serves them.

Litestar generates the document from the handlers' Structs; request bodies are validated by
hand (for DRF's messages), so their schemas are added here from the request Structs.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.router import Router
from litestar.static_files import create_static_files_router

from readapi.models import (
    ConnectorIn,
    DatapointIn,
    Detail,
    ScheduleIn,
    SetpointIn,
    TokenRequest,
    ValueIn,
)
from schema.settings import Settings

REQUEST_BODIES: dict[str, Any] = {
    "value": ValueIn,
    "setpoint": SetpointIn,
    "schedule": ScheduleIn,
    "value-list": list[ValueIn],
    "setpoint-list": list[SetpointIn],
    "schedule-list": list[ScheduleIn],
    "datapoint-list": list[DatapointIn],
    "connector": ConnectorIn,
    "token": TokenRequest,
}
# Swagger UI's scripts are served from the installed swagger-ui-py package (Swagger UI 5, which
# reads OpenAPI 3.1), not a CDN: buildings are often offline, and the page must work there too.
# Only its files are used; importing it would load its framework adapters for nothing.
SWAGGER_ASSETS_PATH = "/static/swagger-ui"


def swagger_ui_files() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


_PATH_PARAMETER = re.compile(r"\{(\w+):\w+\}")

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>BEMCom API</title>
  <link rel="stylesheet" href="__ASSETS__/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="__ASSETS__/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "__SCHEMA_URL__", dom_id: "#swagger-ui"});
  </script>
</body>
</html>
"""


def openapi_document(app: Litestar) -> dict[str, Any]:
    document = app.openapi_schema.to_schema()
    document["paths"] = {
        path: item for path, item in document.get("paths", {}).items() if "_openapi" not in path
    }
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    (body_schemas, extra) = msgspec.json.schema_components(
        list(REQUEST_BODIES.values()), ref_template="#/components/schemas/{name}"
    )
    for name, schema in extra.items():
        schemas.setdefault(name, schema)
    body_by_name = dict(zip(REQUEST_BODIES, body_schemas, strict=True))
    (detail_schema,), detail_components = msgspec.json.schema_components(
        [Detail], ref_template="#/components/schemas/{name}"
    )
    for name, schema in detail_components.items():
        schemas.setdefault(name, schema)
    # Litestar drops a path's trailing slash; clients call the original's paths with it.
    documented: dict[str, str] = {}
    for route in app.routes:
        path = _PATH_PARAMETER.sub(r"{\1}", route.path)
        route_handlers = getattr(route, "route_handlers", ())
        slash = all(h.opt.get("trailing_slash", True) for h in route_handlers)
        documented[path] = path + "/" if slash and not path.endswith("/") else path
        for handler in route_handlers:
            for method in handler.http_methods:
                operation = document["paths"].get(path, {}).get(method.lower())
                if operation is None:
                    continue
                struct = handler.opt.get("request_struct")
                if struct is not None:
                    operation["requestBody"] = {
                        "required": True,
                        "content": {"application/json": {"schema": body_by_name[struct]}},
                    }
                _document_errors(operation, handler, "{" in path, detail_schema)
    document["paths"] = {
        documented.get(path, path): item for path, item in document["paths"].items()
    }
    components["securitySchemes"] = {
        "basicAuth": {"type": "http", "scheme": "basic"},
        "bearerAuth": {"type": "http", "scheme": "bearer"},
    }
    document["security"] = [{"basicAuth": []}, {"bearerAuth": []}]
    return document


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _document_errors(operation: dict, handler, has_parameters: bool, detail: dict) -> None:
    """The error answers in the original's shapes, in place of Litestar's generic one."""
    responses = operation.setdefault("responses", {})
    responses.pop("400", None)
    if handler.opt.get("request_struct") or operation.get("parameters"):
        responses["400"] = _json(
            'Invalid input, in DRF\'s shapes: {"field": ["message"]}, ["message"] or '
            '{"detail": "message"}',
            {"type": ["object", "array"]},
        )
    if handler.opt.get("request_struct"):
        responses["408"] = _json(
            "The body did not arrive within READAPI_BODY_TIMEOUT_SECONDS", detail
        )
        responses["413"] = _json(
            "The body is larger than READAPI_MAX_BODY_BYTES (64 KiB for POST /auth/token/)",
            detail,
        )
        responses["415"] = _json("The body is not declared application/json", detail)
    if handler.guards:
        responses["401"] = _json("No or invalid credentials", detail)
        responses["403"] = _json("The user lacks the permission", detail)
    if handler.guards or handler.name == "token-create":
        responses["429"] = _json("Too many failed logins: wait for Retry-After seconds", detail)
    if has_parameters:
        responses["404"] = _json("No such datapoint, connector or message", detail)
    if handler.name.endswith("-publish") or handler.name == "connector-delete":
        responses["503"] = _json("The MQTT broker is not reachable", detail)
    if handler.name == "health-ready":
        responses["503"] = _json("The database or the MQTT broker is not reachable", {})


def handlers(settings: Settings) -> list[HTTPRouteHandler | Router]:
    @get("/schema/", name="openapi", include_in_schema=False)
    async def schema_document(request: Request) -> Response:
        cached = request.app.state.get("openapi_bytes")
        if cached is None:
            cached = msgspec.json.encode(openapi_document(request.app))
            request.app.state.openapi_bytes = cached
        return Response(cached, media_type=MediaType.JSON)

    @get("/", name="swagger-ui", include_in_schema=False)
    async def swagger_ui() -> Response:
        page = SWAGGER_PAGE.replace("__SCHEMA_URL__", f"{settings.root_path}/schema/").replace(
            "__ASSETS__", f"{settings.root_path}{SWAGGER_ASSETS_PATH}"
        )
        return Response(page, media_type=MediaType.HTML)

    assets = create_static_files_router(
        path=SWAGGER_ASSETS_PATH,
        directories=[swagger_ui_files()],
        name="swagger-ui-assets",
        include_in_schema=False,
    )
    return [schema_document, swagger_ui, assets]
