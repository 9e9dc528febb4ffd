"""The last line of defence of the admin app: an unexpected error becomes a logged, plain
page instead of a dropped connection or a traceback in the browser."""

from __future__ import annotations

import structlog
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("readapi.admin")


class ErrorPagesMiddleware:
    def __init__(self, app: ASGIApp, debug: bool = False) -> None:
        self.app = app
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("admin_error", path=scope.get("path"), method=scope.get("method"))
            if started or self.debug:
                raise
            page = HTMLResponse(
                "<!DOCTYPE html><title>Server error</title><h1>Something went wrong.</h1>"
                "<p>The error has been logged. Go back and try again; if it persists, "
                "tell the administrator the time it happened.</p>",
                status_code=500,
            )
            await page(scope, receive, send)
