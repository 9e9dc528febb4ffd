"""What every model page of the admin shares: permissions by codename, no CSV import,
access to the application's services, and the current request's objects."""

from __future__ import annotations

from typing import ClassVar

from sqladmin import ModelView
from sqladmin.forms import Form
from sqladmin.helpers import object_identifier_values
from sqlalchemy import Select
from starlette.exceptions import HTTPException
from starlette.requests import Request

from readapi.admin.validators import NoNul
from readapi.services import Services
from schema.limits import INT32, MAX_ID
from schema.settings import Settings


class NulFreeForm(Form):
    """Every field refuses NUL characters, which PostgreSQL cannot store in text."""

    def validate(self, extra_validators=None) -> bool:
        extra = {name: list(v) for name, v in (extra_validators or {}).items()}
        for name in self._fields:
            extra.setdefault(name, []).append(NoNul())
        return super().validate(extra)


class BemcomModelView(ModelView):
    permission_model: ClassVar[str] = ""
    form_base_class = NulFreeForm
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

    def _stmt_by_identifier(self, identifier: str) -> Select:
        """sqladmin's lookup by primary key, but an id that cannot exist is a 404, not a
        ValueError (or, past 32 bits, a database error)."""
        try:
            values = object_identifier_values(identifier, self.model)
        except (ValueError, TypeError):
            raise HTTPException(404) from None
        if any(isinstance(v, int) and v not in INT32 for v in values):
            raise HTTPException(404)
        return super()._stmt_by_identifier(identifier)


def path_id(request: Request, name: str = "pk") -> int | None:
    """A positive integer id from the path, or None for anything else (then: 404)."""
    raw = request.path_params.get(name, "")
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


def notify(request: Request, message: str, category: str = "success") -> None:
    """A message for the next page (sqladmin's flash format).

    sqladmin's own flash() appends to the stored list in place, which Starlette's session
    does not notice (it tracks assignments), so a second message would be lost.
    """
    messages = list(request.session.get("_messages", []))
    messages.append({"category": category, "title": "", "message": message})
    request.session["_messages"] = messages
