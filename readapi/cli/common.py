"""What the admin commands share: their error, the password input, the database."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from readapi.accounts import UserRow, user_by_name
from readapi.startup import migrated_engine
from schema.settings import Settings

USAGE_ERROR = 2


class CommandError(Exception):
    """A target that does not exist or input that cannot be used: exit 2 with this line."""


def read_password(stdin=None) -> str:
    """Prompted twice on a terminal; the first line of stdin otherwise."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise CommandError("the two passwords differ")
    else:
        password = stdin.readline().rstrip("\r\n")
    if not password:
        raise CommandError("an empty password is not allowed")
    return password


@contextmanager
def transaction(settings: Settings) -> Iterator[Connection]:
    """One transaction on the configured database (PostgreSQL or SQLite), migrated first."""
    engine = migrated_engine(settings)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def existing_user(connection: Connection, username: str) -> UserRow:
    user = user_by_name(connection, username)
    if user is None:
        raise CommandError(f"no user named {username!r}")
    return user
