"""The admin request being served, for the few places sqladmin gives no request: the form
validators (a unique name must not collide with another row, but may keep its own).

A ContextVar is per request (per task), set by the mount for the request's lifetime.
"""

from __future__ import annotations

from contextvars import ContextVar

import msgspec
from sqlalchemy import Engine


class AdminRequest(msgspec.Struct):
    scope: dict  # the ASGI scope; the router adds the path parameters to it in place
    engine: Engine

    def path_id(self) -> int | None:
        raw = self.scope.get("path_params", {}).get("pk")
        return int(raw) if isinstance(raw, str) and raw.isdigit() and len(raw) < 10 else None


CURRENT: ContextVar[AdminRequest | None] = ContextVar("bemcom_admin_request", default=None)
