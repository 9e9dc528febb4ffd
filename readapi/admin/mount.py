"""The admin UI inside the Litestar application: one ASGI handler mounted at /admin.

Litestar hands a mounted app the path below the mount point (with a trailing slash added);
sqladmin is a Starlette app that routes on full paths and builds its links from root_path.
So the handler gives it the request's real path (from raw_path, slash as sent) and ROOT_PATH
as root_path: links and redirects then carry ROOT_PATH, mounted anywhere.
"""

from __future__ import annotations

import asyncio
from html import escape
from urllib.parse import unquote

import anyio.to_thread
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from readapi.admin.request_context import CURRENT, AdminRequest
from readapi.admin.secret_key import session_secret
from readapi.admin.site import MOUNT, build_site
from readapi.services import Services
from schema.settings import Settings

# The keys of the ASGI HTTP scope the admin app needs; Litestar's own entries stay behind.
_ASGI_KEYS = (
    "type",
    "asgi",
    "http_version",
    "method",
    "scheme",
    "query_string",
    "headers",
    "client",
    "server",
    "extensions",
)


class AdminMount:
    def __init__(self, settings: Settings, services: Services) -> None:
        self.settings = settings
        self.services = services
        self._site = None
        self._lock = asyncio.Lock()

    async def site(self):
        if self._site is None:
            async with self._lock:
                if self._site is None:
                    secret = await anyio.to_thread.run_sync(
                        session_secret,
                        self.services.database.engine,
                        self.settings.django_secret_key,
                    )
                    self._site = build_site(self.settings, self.services, secret)
        return self._site

    def full_path(self, scope: Scope) -> str:
        raw = scope.get("raw_path")
        if raw:
            return unquote(raw.split(b"?", 1)[0].decode("latin-1"))
        return f"{self.settings.root_path}{MOUNT}{scope['path']}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if b"%00" in scope.get("query_string", b""):
            # PostgreSQL cannot compare text with NUL in it; no search or filter needs one.
            await _bad_request(send, "NUL characters are not allowed in the address.")
            return
        site = await self.site()
        child = {key: scope[key] for key in _ASGI_KEYS if key in scope}
        child["path"] = self.full_path(scope)
        child["raw_path"] = child["path"].encode()
        child["root_path"] = self.settings.root_path
        child["state"] = {}
        token = CURRENT.set(AdminRequest(child, self.services.database.engine))
        try:
            await site(child, receive, send)
        finally:
            CURRENT.reset(token)


async def _bad_request(send: Send, message: str) -> None:
    body = f"<!DOCTYPE html><title>400 Bad Request</title><h1>{escape(message)}</h1>".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def handlers(settings: Settings, services: Services) -> list[ASGIRouteHandler]:
    mount = AdminMount(settings, services)

    @asgi(MOUNT, name="admin-ui", is_mount=True, copy_scope=True, include_in_schema=False)
    async def admin_ui(scope: Scope, receive: Receive, send: Send) -> None:
        await mount(scope, receive, send)

    return [admin_ui]
