"""READAPI_MAX_BODY_BYTES for the admin UI.

Litestar enforces the limit where its own handlers read a body; the admin app is a mounted
ASGI app that reads the body itself (Starlette's form parser), so the limit is applied here,
on the way in: a declared Content-Length over it is refused before a byte is read, and a
streamed body is cut off as soon as it passes it.
"""

from __future__ import annotations

from html import escape

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("readapi.admin")


class BodyTooLarge(Exception):
    """Raised from receive() once a streamed body passes the limit."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        log.info("admin_body_too_large", path=scope.get("path"), limit=self.limit)
        message = f"Request body too large: the limit is {self.limit} bytes."
        body = (
            f"<!DOCTYPE html><title>413 Request body too large</title><h1>{escape(message)}</h1>"
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is not worth reading: close after the answer.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
