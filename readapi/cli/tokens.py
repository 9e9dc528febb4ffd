"""`python -m readapi tokens list|create|revoke`.

Only a token's SHA-256 is stored, so a token is named by the start of its hash (the id that
`tokens list` shows); the token itself is printed once, by `tokens create`.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select

from readapi.accounts import create_token
from readapi.cli.common import CommandError, existing_user, transaction
from schema.settings import Settings
from schema.tables import api_token, auth_user

ID_LENGTH = 12
MIN_ID_LENGTH = 8


def add_parser(commands: argparse._SubParsersAction) -> None:
    tokens = commands.add_parser("tokens", help="list, create and revoke API tokens")
    actions = tokens.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every token: id, user, label, created")
    listing.add_argument("--user", help="only this user's tokens")
    create = actions.add_parser("create", help="print a new token for a user")
    create.add_argument("username")
    create.add_argument("--label", default="cli")
    revoke = actions.add_parser("revoke", help="delete a token by the id `tokens list` shows")
    revoke.add_argument("token_id")


def run(settings: Settings, args: argparse.Namespace) -> str:
    with transaction(settings) as connection:
        if args.action == "list":
            return _list(connection, args.user)
        if args.action == "create":
            user = existing_user(connection, args.username)
            return create_token(connection, user.id, label=args.label)
        return _revoke(connection, args.token_id.strip().lower())


def _list(connection: Connection, username: str | None) -> str:
    query = (
        select(api_token.c.key_hash, auth_user.c.username, api_token.c.label, api_token.c.created)
        .join(auth_user, auth_user.c.id == api_token.c.user_id)
        .order_by(auth_user.c.username, api_token.c.created)
    )
    if username is not None:
        query = query.where(auth_user.c.id == existing_user(connection, username).id)
    lines = ["id\tuser\tlabel\tcreated"]
    for key_hash, user, label, created in connection.execute(query):
        when = datetime.fromtimestamp(created / 1000, UTC).isoformat(timespec="seconds")
        lines.append(f"{key_hash[:ID_LENGTH]}\t{user}\t{label}\t{when}")
    return "\n".join(lines)


def _revoke(connection: Connection, token_id: str) -> str:
    if len(token_id) < MIN_ID_LENGTH or any(c not in "0123456789abcdef" for c in token_id):
        raise CommandError(f"a token id is at least {MIN_ID_LENGTH} hex digits, got {token_id!r}")
    matches = (
        connection.execute(
            select(api_token.c.key_hash).where(api_token.c.key_hash.startswith(token_id))
        )
        .scalars()
        .all()
    )
    if not matches:
        raise CommandError(f"no token with id {token_id!r}")
    if len(matches) > 1:
        raise CommandError(f"{len(matches)} tokens start with {token_id!r}; give more digits")
    connection.execute(delete(api_token).where(api_token.c.key_hash == matches[0]))
    return f"token {token_id} revoked"
