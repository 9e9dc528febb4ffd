"""Errors as the original answers them: JSON in DRF's shapes, never an HTML page.

Handlers raise `ApiError` with the exact body; the exception handlers below turn it, and
Litestar's own routing and validation errors, into `application/json` responses.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

log = structlog.get_logger("readapi")

NOT_FOUND = "Not found."
NOT_AUTHENTICATED = "Authentication credentials were not provided."
PERMISSION_DENIED = "You do not have permission to perform this action."
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="api"'}


class ApiError(Exception):
    """An answer other than success, with the exact JSON body the client gets."""

    def __init__(self, status_code: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status_code, body)
        self.status_code = status_code
        self.body = body
        self.headers = headers or {}


def detail(status_code: int, message: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status_code, {"detail": message}, headers)


def not_found() -> ApiError:
    return detail(404, NOT_FOUND)


def not_authenticated(message: str = NOT_AUTHENTICATED) -> ApiError:
    return detail(401, message, WWW_AUTHENTICATE)


def throttled(seconds: int) -> ApiError:
    """DRF's answer when a throttle refuses a request."""
    unit = "second" if seconds == 1 else "seconds"
    return detail(
        429,
        f"Request was throttled. Expected available in {seconds} {unit}.",
        {"Retry-After": str(seconds)},
    )


def json_response(body: Any, status_code: int = 200, headers: dict | None = None) -> Response:
    return Response(
        msgspec.json.encode(body),
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


def handle_api_error(_: Request, error: ApiError) -> Response:
    return json_response(error.body, error.status_code, error.headers or None)


def handle_http_exception(request: Request, error: HTTPException) -> Response:
    """Litestar's own errors (no route, wrong method, bad parameter) in DRF's words."""
    status = error.status_code
    headers: dict[str, str] = {}
    if status == 404:
        body: Any = {"detail": NOT_FOUND}
    elif status == 405:
        body = {"detail": f'Method "{request.method}" not allowed.'}
    elif status == 413:
        limit = request.route_handler.resolve_request_max_body_size()
        body = {"detail": f"Request body too large: the limit is {limit} bytes."}
        # Reading the rest of the body only to discard it is what the limit is there to avoid.
        headers = {"Connection": "close"}
    elif status == 400 and error.extra:
        # A parameter Litestar could not parse: name it, as DRF names a bad field.
        body = {"detail": error.detail, "errors": error.extra}
    else:
        body = {"detail": error.detail}
    headers = {**(error.headers or {}), **headers}
    if status == 401:
        headers.update(WWW_AUTHENTICATE)
    return json_response(body, status, headers or None)


def handle_unexpected(request: Request, error: Exception) -> Response:
    log.error("unhandled_error", path=request.url.path, method=request.method, exc_info=error)
    return json_response({"detail": "A server error occurred."}, 500)


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
