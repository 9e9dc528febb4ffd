"""`python -m readapi users list|create|deactivate|activate|set-password|grant|revoke`."""

from __future__ import annotations

import argparse

from sqlalchemy import Connection, delete, select, update

from readapi.accounts import (
    UnknownPermission,
    create_user,
    grant_permissions,
    permission_ids,
    permissions_of,
    user_by_name,
)
from readapi.cli.common import CommandError, existing_user, read_password, transaction
from readapi.passwords import hash_password
from schema.settings import Settings
from schema.tables import auth_user, auth_user_permissions


def add_parser(commands: argparse._SubParsersAction) -> None:
    users = commands.add_parser("users", help="list and manage users")
    actions = users.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every user with its flags and permissions")
    create = actions.add_parser("create", help="a new user; password from a prompt or stdin")
    create.add_argument("username")
    create.add_argument("--email", default="")
    create.add_argument("--superuser", action="store_true")
    create.add_argument("--permission", action="append", default=[], help="repeat for more")
    for name, text in (
        ("deactivate", "refuse the user's password and tokens from now on"),
        ("activate", "let a deactivated user in again"),
        ("set-password", "a new password, from a prompt or stdin"),
    ):
        actions.add_parser(name, help=text).add_argument("username")
    for name, text in (("grant", "give permissions"), ("revoke", "take permissions away")):
        action = actions.add_parser(name, help=text)
        action.add_argument("username")
        action.add_argument("permission", nargs="+", help="codenames such as view_datapoint")


def run(settings: Settings, args: argparse.Namespace) -> str:
    """Carry out the action; return what to print. Raises CommandError."""
    # The password is read before the database is opened: a prompt must not hold a transaction.
    password = read_password() if args.action in ("create", "set-password") else ""
    with transaction(settings) as connection:
        if args.action == "list":
            return _list(connection)
        if args.action == "create":
            if user_by_name(connection, args.username) is not None:
                raise CommandError(f"user {args.username!r} exists; use set-password or grant")
            try:
                user_id = create_user(
                    connection,
                    args.username,
                    password,
                    email=args.email,
                    superuser=args.superuser,
                    permissions=tuple(args.permission),
                )
            except UnknownPermission as error:
                raise CommandError(str(error)) from None
            return f"user {args.username} (id {user_id}) created"
        user = existing_user(connection, args.username)
        where = auth_user.c.id == user.id
        if args.action in ("deactivate", "activate"):
            active = args.action == "activate"
            connection.execute(update(auth_user).where(where).values(is_active=active))
            return f"user {user.username} {args.action}d"
        if args.action == "set-password":
            connection.execute(
                update(auth_user).where(where).values(password=hash_password(password))
            )
            return f"password of {user.username} set"
        if args.action == "grant":
            try:
                grant_permissions(connection, user.id, tuple(args.permission))
            except UnknownPermission as error:
                raise CommandError(str(error)) from None
            return f"granted to {user.username}: {', '.join(args.permission)}"
        return _revoke(connection, user.id, user.username, args.permission)


def _revoke(connection: Connection, user_id: int, username: str, codenames: list[str]) -> str:
    try:
        ids = permission_ids(connection, codenames)
    except UnknownPermission as error:
        raise CommandError(str(error)) from None
    connection.execute(
        delete(auth_user_permissions).where(
            auth_user_permissions.c.user_id == user_id,
            auth_user_permissions.c.permission_id.in_(ids.values()),
        )
    )
    left = permissions_of(connection, user_id) & set(codenames)
    note = f" (still granted through a group: {', '.join(sorted(left))})" if left else ""
    return f"revoked from {username}: {', '.join(codenames)}{note}"


def _list(connection: Connection) -> str:
    rows = connection.execute(
        select(
            auth_user.c.id,
            auth_user.c.username,
            auth_user.c.is_active,
            auth_user.c.is_superuser,
        ).order_by(auth_user.c.username)
    ).all()
    lines = ["id\tusername\tactive\tsuperuser\tpermissions"]
    for user_id, username, active, superuser in rows:
        permissions = ",".join(sorted(permissions_of(connection, user_id)))
        lines.append(f"{user_id}\t{username}\t{active}\t{superuser}\t{permissions}")
    return "\n".join(lines)
