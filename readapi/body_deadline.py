"""READAPI_BODY_TIMEOUT_SECONDS: the whole request body must arrive in time, or 408 in JSON.

uvicorn hands the body to the application at whatever pace the client sends it; a client
trickling a byte a second would hold its connection and its request open for ever.
The request head has its own deadline in readapi/http_protocol.py.
"""

from __future__ import annotations

import anyio
import structlog

from readapi.errors import detail

log = structlog.get_logger("readapi")


class BodyDeadlineMiddleware:
    """The whole request body must arrive within `seconds` of the request head; 408 if not.

    Only reading the body is bounded: once it is complete, the application's wait for the
    client to disconnect (while a long response streams) is not.
    """

    def __init__(self, app, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = anyio.current_time() + self.seconds
        body_complete = False

        async def receive_in_time():
            nonlocal body_complete
            if body_complete:
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()):
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    body_complete = True
                return message
            log.info("request_body_timeout", path=scope["path"], seconds=self.seconds)
            raise detail(
                408,
                f"The request body did not arrive within {self.seconds:g} seconds.",
                # The rest of the body is not worth waiting for: close after the answer.
                {"Connection": "close"},
            )

        await self.app(scope, receive_in_time, send)
