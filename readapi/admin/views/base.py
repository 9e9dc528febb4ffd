"""What every model page of the admin shares: permissions by codename, no CSV import,
access to the application's services, and the current request's objects."""

from __future__ import annotations

from typing import Any, ClassVar

from sqladmin import ModelView
from starlette.requests import Request

from readapi.services import Services
from schema.settings import Settings


class BemcomModelView(ModelView):
    permission_model: ClassVar[str] = ""
    can_import = False
    can_export = False
    page_size = 25
    page_size_options = [25, 50, 100]

    @property
    def services(self) -> Services:
        return self._admin_ref.services

    @property
    def settings(self) -> Settings:
        return self._admin_ref.settings

    def url(self, request: Request, name: str, **params: Any) -> str:
        return str(request.url_for(name, **params))


def path_id(request: Request, name: str = "pk") -> int | None:
    """A positive integer id from the path, or None for anything else (then: 404)."""
    raw = request.path_params.get(name, "")
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if 0 < value < 2**31 else None
