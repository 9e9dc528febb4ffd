"""Users, groups' permissions and tokens in the auth tables: lookups and creation."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy import Connection, insert, select, union, update

from readapi.passwords import hash_password, new_token, token_hash
from schema.limits import now_ms
from schema.tables import (
    api_token,
    auth_group_permissions,
    auth_permission,
    auth_user,
    auth_user_groups,
    auth_user_permissions,
    credentials_version,
)


class Principal(msgspec.Struct, frozen=True):
    """An authenticated user and everything a permission check needs."""

    user_id: int
    username: str
    is_superuser: bool
    permissions: frozenset[str]

    def has(self, codename: str) -> bool:
        return self.is_superuser or codename in self.permissions


class UserRow(msgspec.Struct, frozen=True):
    id: int
    username: str
    password: str
    is_superuser: bool
    is_active: bool


def _user_columns():
    return (
        auth_user.c.id,
        auth_user.c.username,
        auth_user.c.password,
        auth_user.c.is_superuser,
        auth_user.c.is_active,
    )


def user_by_name(connection: Connection, username: str) -> UserRow | None:
    row = connection.execute(
        select(*_user_columns()).where(auth_user.c.username == username)
    ).first()
    return UserRow(*row) if row else None


def user_by_token(connection: Connection, token: str) -> UserRow | None:
    row = connection.execute(
        select(*_user_columns())
        .join(api_token, api_token.c.user_id == auth_user.c.id)
        .where(api_token.c.key_hash == token_hash(token))
    ).first()
    return UserRow(*row) if row else None


def permissions_of(connection: Connection, user_id: int) -> frozenset[str]:
    direct = (
        select(auth_permission.c.codename)
        .join(auth_user_permissions, auth_user_permissions.c.permission_id == auth_permission.c.id)
        .where(auth_user_permissions.c.user_id == user_id)
    )
    via_groups = (
        select(auth_permission.c.codename)
        .join(
            auth_group_permissions, auth_group_permissions.c.permission_id == auth_permission.c.id
        )
        .join(auth_user_groups, auth_user_groups.c.group_id == auth_group_permissions.c.group_id)
        .where(auth_user_groups.c.user_id == user_id)
    )
    return frozenset(connection.execute(union(direct, via_groups)).scalars())


_CREDENTIALS_VERSION = f"SELECT version FROM {credentials_version.name} WHERE id = 1"


def current_credentials_version(connection: Connection) -> int:
    """The version migration 0005's triggers bump on every change that can revoke.

    Read on every authenticated request, so as the driver's plain SQL (no statement to
    compile or look up: about a third of the Core query's time on SQLite).
    """
    return connection.exec_driver_sql(_CREDENTIALS_VERSION).scalar_one()


def principal_of(connection: Connection, user: UserRow) -> Principal:
    return Principal(user.id, user.username, user.is_superuser, permissions_of(connection, user.id))


class UnknownPermission(ValueError):
    pass


def create_user(
    connection: Connection,
    username: str,
    password: str,
    *,
    email: str = "",
    superuser: bool = False,
    permissions: tuple[str, ...] = (),
) -> int:
    """Create a user (or reset an existing one's password and flags); return its id."""
    existing = user_by_name(connection, username)
    values = {
        "password": hash_password(password),
        "email": email,
        "is_superuser": superuser,
        "is_staff": superuser,
        "is_active": True,
    }
    if existing:
        connection.execute(update(auth_user).where(auth_user.c.id == existing.id).values(values))
        user_id = existing.id
    else:
        user_id = connection.execute(
            insert(auth_user)
            .values(username=username, date_joined=now_ms(), **values)
            .returning(auth_user.c.id)
        ).scalar_one()
    grant_permissions(connection, user_id, permissions)
    return user_id


def permission_ids(connection: Connection, codenames: Sequence[str]) -> dict[str, int]:
    """Each codename's permission id; UnknownPermission naming those that do not exist."""
    rows = dict(
        connection.execute(
            select(auth_permission.c.codename, auth_permission.c.id).where(
                auth_permission.c.codename.in_(codenames)
            )
        ).all()
    )
    unknown = sorted(set(codenames) - set(rows))
    if unknown:
        raise UnknownPermission(f"unknown permission(s): {', '.join(unknown)}")
    return rows


def grant_permissions(connection: Connection, user_id: int, codenames: tuple[str, ...]) -> None:
    if not codenames:
        return
    rows = permission_ids(connection, codenames)
    have = set(
        connection.execute(
            select(auth_user_permissions.c.permission_id).where(
                auth_user_permissions.c.user_id == user_id
            )
        ).scalars()
    )
    new = [{"user_id": user_id, "permission_id": rows[c]} for c in codenames if rows[c] not in have]
    if new:
        connection.execute(insert(auth_user_permissions), new)


def ensure_superuser(connection: Connection, username: str, password: str, email: str) -> bool:
    """Create the DJANGO_SUPERUSER_* account unless it exists; True if created.

    An existing account is left alone, as `createsuperuser --noinput` does: a password changed
    since must not be reset by a restart.
    """
    if user_by_name(connection, username):
        return False
    create_user(connection, username, password, email=email, superuser=True)
    return True


def create_token(connection: Connection, user_id: int, label: str = "") -> str:
    """A new token for the user; only its hash is stored, so this is the one chance to see it."""
    token = new_token()
    connection.execute(
        insert(api_token).values(
            key_hash=token_hash(token), user_id=user_id, created=now_ms(), label=label
        )
    )
    return token
