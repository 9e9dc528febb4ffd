"""READAPI_MAX_BODY_BYTES for the admin UI.

Litestar enforces the limit where its own handlers read a body; the admin app is a mounted
ASGI app that reads the body itself (Starlette's form parser), so the limit is applied here,
on the way in: a declared Content-Length over it is refused before a byte is read, and a
streamed body is cut off as soon as it passes it. (Forms that change something are also
capped at 1 MiB by the CSRF check, which reads them whole; this limit can be lower.)
ErrorPagesMiddleware, outside this one, turns BodyTooLarge into the 413 page.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body too large: the limit is {limit} bytes.")


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
            raise BodyTooLarge(self.limit)
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
