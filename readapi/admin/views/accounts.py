"""Users, groups, permissions and API tokens: the same accounts the REST API checks.

Passwords are set through a write-only field and stored as argon2 hashes; a token is shown
once, at creation, and only its SHA-256 is kept. Accounts that could raise someone's rights
are guarded: only a superuser may edit a superuser, make one, or mint a token for another
user.
"""

from __future__ import annotations

import anyio.to_thread
from sqladmin import Secret
from starlette.requests import Request
from wtforms import PasswordField, ValidationError, validators

from readapi.accounts import create_token
from readapi.admin.auth import principal_of
from readapi.admin.formatting import when
from readapi.admin.orm import ApiToken, Group, Permission, User
from readapi.admin.request_context import CURRENT
from readapi.admin.validators import NoNul, Unique
from readapi.admin.views.base import BemcomModelView, NulFreeForm
from readapi.passwords import hash_password, token_hash
from schema import tables
from schema.limits import now_ms


class Refused(ValueError):
    """A change the current user may not make; sqladmin shows the text above the form."""


def _is_superuser(request: Request) -> bool:
    principal = principal_of(request)
    return principal is not None and principal.is_superuser


def _required_when_creating(form, field) -> None:
    request = CURRENT.get()
    creating = request is not None and request.path_id() is None
    if creating and not field.data:
        raise ValidationError("This field is required.")


class UserForm(NulFreeForm):
    new_password = PasswordField(
        "Password",
        validators=[_required_when_creating, validators.Length(max=4096), NoNul()],
        description="Stored as an argon2 hash. When editing, leave empty to keep the password.",
        render_kw={"autocomplete": "new-password"},
    )


class UserAdmin(BemcomModelView, model=User):
    permission_model = "user"
    name = "User"
    icon = "fa-solid fa-user"
    category = "Accounts"
    category_icon = "fa-solid fa-user-shield"
    column_list = ["id", "username", "email", "is_active", "is_staff", "is_superuser", "groups"]
    column_details_exclude_list = ["password"]
    column_labels = {
        "is_active": "Active",
        "is_staff": "Staff (may log in here)",
        "is_superuser": "Superuser",
        "user_permissions": "Permissions",
        "date_joined": "Joined",
        "last_login": "Last login",
    }
    column_formatters_detail = {
        "date_joined": lambda m, a: when(m.date_joined),
        "last_login": lambda m, a: when(m.last_login),
    }
    column_searchable_list = ["username", "email"]
    column_sortable_list = ["id", "username"]
    form_base_class = UserForm
    form_columns = [
        "username",
        "email",
        "first_name",
        "last_name",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
    ]
    form_args = {
        "username": {
            "validators": [
                validators.InputRequired(),
                validators.Length(max=150),
                validators.Regexp(
                    r"^[\w.@+-]+$",
                    message="Enter a valid username: letters, digits and @/./+/-/_ only.",
                ),
                Unique(tables.auth_user.c.username, "A user with that username already exists."),
            ]
        },
        # A plain pattern: wtforms' Email() needs the email_validator package.
        "email": {
            "validators": [
                validators.Optional(),
                validators.Length(max=254),
                validators.Regexp(
                    r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Enter a valid email address."
                ),
            ]
        },
    }

    async def on_model_change(self, data, model, is_created, request) -> None:
        touches_superuser = data.get("is_superuser") or (not is_created and model.is_superuser)
        if touches_superuser and not _is_superuser(request):
            raise Refused("Only a superuser may create, edit or promote a superuser.")
        password = data.pop("new_password", None)
        for name in ("email", "first_name", "last_name"):
            if data.get(name) is None:
                data[name] = ""
        if password:
            model.password = await anyio.to_thread.run_sync(hash_password, password)
        if is_created:
            model.date_joined = now_ms()

    async def on_model_delete(self, model, request) -> None:
        if model is not None and model.is_superuser and not _is_superuser(request):
            raise Refused("Only a superuser may delete a superuser.")


class GroupAdmin(BemcomModelView, model=Group):
    permission_model = "group"
    name = "Group"
    icon = "fa-solid fa-users"
    category = "Accounts"
    category_icon = "fa-solid fa-user-shield"
    column_list = ["id", "name", "permissions"]
    column_searchable_list = ["name"]
    form_columns = ["name", "permissions"]
    form_args = {
        "name": {
            "validators": [
                validators.InputRequired(),
                validators.Length(max=150),
                NoNul(),
                Unique(tables.auth_group.c.name, "group with this name already exists."),
            ]
        }
    }


class PermissionAdmin(BemcomModelView, model=Permission):
    """Read-only: the codenames exist once, created by the migrations."""

    permission_model = "group"  # whoever may see groups may see what they can grant
    name = "Permission"
    icon = "fa-solid fa-key"
    category = "Accounts"
    category_icon = "fa-solid fa-user-shield"
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ["codename", "name"]
    column_searchable_list = ["codename", "name"]
    column_default_sort = ("codename", False)
    page_size = 50


class TokenAdmin(BemcomModelView, model=ApiToken):
    permission_model = "token"
    name = "API token"
    icon = "fa-solid fa-ticket"
    category = "Accounts"
    category_icon = "fa-solid fa-user-shield"
    can_edit = False  # a token is replaced (delete, create), never edited
    column_list = ["user", "label", "key_hash", "created"]
    column_labels = {"key_hash": "Fingerprint (hash prefix)"}
    column_formatters = {
        "key_hash": lambda m, a: f"{m.key_hash[:8]}…",
        "created": lambda m, a: when(m.created),
    }
    column_formatters_detail = column_formatters
    column_searchable_list = ["label"]
    form_columns = ["user", "label"]
    form_args = {
        "user": {"validators": [validators.InputRequired()]},
        "label": {
            "validators": [validators.Length(max=255), NoNul()],
            "description": "What the token is for, e.g. the backup job.",
        },
    }

    async def insert_model(self, request: Request, data: dict):
        user = data.get("user")
        principal = principal_of(request)
        user_id = int(user) if not isinstance(user, User) else user.id
        if not principal.is_superuser and user_id != principal.user_id:
            raise Refused("Only a superuser may create a token for another user.")

        def create() -> tuple[str, ApiToken]:
            with self.services.database.begin() as connection:
                token = create_token(connection, user_id, data.get("label") or "")
            with self.session_maker(expire_on_commit=False) as session:
                return token, session.get(ApiToken, token_hash(token))

        token, obj = await anyio.to_thread.run_sync(create)
        Secret.reveal_once(
            request,
            token,
            title="New API token",
            label="Copy it now: only its hash is stored, so it cannot be shown again.",
        )
        return obj
