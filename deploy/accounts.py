"""The accounts `make run` needs: the admin a newcomer logs in with, and its own.

Accounts are created through readapi's CLI (`python -m readapi createuser`), so password
hashing and permissions stay readapi's business.
"""

from __future__ import annotations

import secrets

import msgspec
from sqlalchemy import select

from deploy.processes import run_module
from schema.database import create_sqlalchemy_engine
from schema.settings import Settings
from schema.tables import auth_user

ADMIN_USERNAME = "admin"
# The launcher's own account: reset to a fresh random password on every start, so no secret
# is stored anywhere, and it can do only what activating the demo needs.
LAUNCHER_USERNAME = "make-run-launcher"
LAUNCHER_PERMISSIONS = (
    "view_connector",
    "add_connector",
    "view_datapoint",
    "add_datapoint",
    "change_datapoint",
)


class Credentials(msgspec.Struct, frozen=True):
    username: str
    password: str | None  # None: an existing account whose password we do not know
    generated: bool = False


def user_exists(settings: Settings, username: str) -> bool:
    engine = create_sqlalchemy_engine(settings)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(auth_user.c.id).where(auth_user.c.username == username)
            ).first()
    finally:
        engine.dispose()
    return row is not None


def create_user(
    env: dict[str, str],
    username: str,
    password: str,
    superuser: bool = False,
    permissions: tuple[str, ...] = (),
    email: str = "",
) -> None:
    args = ["createuser", username, "--email", email]
    if superuser:
        args.append("--superuser")
    for permission in permissions:
        args += ["--permission", permission]
    # The password goes through stdin, never the command line (visible in `ps`).
    run_module("readapi", args, env, stdin=password + "\n")


def ensure_admin(settings: Settings, env: dict[str, str]) -> Credentials:
    """The admin account: from DJANGO_SUPERUSER_*, an existing one, or a new one."""
    if settings.django_superuser_username and settings.django_superuser_password:
        # readapi creates it at start-up from the same variables.
        return Credentials(settings.django_superuser_username, settings.django_superuser_password)
    if user_exists(settings, ADMIN_USERNAME):
        return Credentials(ADMIN_USERNAME, None)
    password = secrets.token_urlsafe(12)
    create_user(env, ADMIN_USERNAME, password, superuser=True, email="admin@example.com")
    return Credentials(ADMIN_USERNAME, password, generated=True)


def reset_launcher_account(env: dict[str, str]) -> Credentials:
    password = secrets.token_urlsafe(24)
    create_user(env, LAUNCHER_USERNAME, password, permissions=LAUNCHER_PERMISSIONS)
    return Credentials(LAUNCHER_USERNAME, password, generated=True)
