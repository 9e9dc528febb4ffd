"""Revocation holds at once in every worker (issue 12, finding 5).

Each worker remembers credentials it verified (argon2 is slow by design). A running
`python -m readapi` with two workers, on PostgreSQL and on SQLite: a credential is first
answered from the cache of each worker (their own log says so, with their pid), then revoked
by a plain SQL write (as the admin UI, the CLI or psql would), and from the very next request
on every worker refuses it. Requests go on fresh connections until both workers have
answered; the workers' pids in the log prove which one did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import pytest
from sqlalchemy import Engine, insert, select, text, update

from readapi.accounts import create_token, create_user, current_credentials_version
from readapi.passwords import hash_password
from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings
from schema.tables import (
    admin_session,
    api_token,
    auth_group,
    auth_group_permissions,
    auth_permission,
    auth_user,
    auth_user_groups,
    login_failure,
)
from tests.readapi.conftest import basic
from tests.support.readapi_process import ReadapiProcess, database_env

VIEW = "view_datapoint"
MAX_REQUESTS = 200  # per phase; both workers answer long before (the deadline holds anyway)
USER_ID = "(SELECT id FROM auth_user WHERE username = :name)"


class Kind(NamedTuple):
    name: str
    revoke: str  # SQL; :name is the user's name, :group the user's group, :hash a new hash
    refused: int  # the status once revoked
    via: str = "direct"  # how the user has VIEW: direct, group, superuser; or "token"


KINDS = (
    Kind("password_reset", "UPDATE auth_user SET password = :hash WHERE username = :name", 401),
    Kind("deactivated", "UPDATE auth_user SET is_active = false WHERE username = :name", 401),
    Kind("renamed", "UPDATE auth_user SET username = :name || 'x' WHERE username = :name", 401),
    Kind("user_deleted", "DELETE FROM auth_user WHERE username = :name", 401),
    Kind(
        "superuser_removed",
        "UPDATE auth_user SET is_superuser = false WHERE username = :name",
        403,
        "superuser",
    ),
    Kind("permission_removed", f"DELETE FROM auth_user_permissions WHERE user_id = {USER_ID}", 403),
    Kind("group_left", f"DELETE FROM auth_user_groups WHERE user_id = {USER_ID}", 403, "group"),
    Kind(
        "group_permission_removed",
        "DELETE FROM auth_group_permissions "
        "WHERE group_id = (SELECT id FROM auth_group WHERE name = :group)",
        403,
        "group",
    ),
    Kind("group_deleted", "DELETE FROM auth_group WHERE name = :group", 403, "group"),
    Kind("token_deleted", f"DELETE FROM api_token WHERE user_id = {USER_ID}", 401, "token"),
)


def _group_with_view(connection, name: str) -> int:
    group_id = connection.execute(
        insert(auth_group).values(name=name).returning(auth_group.c.id)
    ).scalar_one()
    permission_id = connection.execute(
        select(auth_permission.c.id).where(auth_permission.c.codename == VIEW)
    ).scalar_one()
    connection.execute(
        insert(auth_group_permissions).values(group_id=group_id, permission_id=permission_id)
    )
    return group_id


def seed(engine: Engine) -> dict[str, dict[str, str]]:
    """A user per kind, holding VIEW as the kind needs; kind name -> its request headers."""
    headers = {}
    with engine.begin() as connection:
        for kind in KINDS:
            name = f"u_{kind.name}"
            direct = (VIEW,) if kind.via in ("direct", "token") else ()
            user_id = create_user(
                connection, name, "pass", superuser=kind.via == "superuser", permissions=direct
            )
            if kind.via == "group":
                group_id = _group_with_view(connection, f"g_{kind.name}")
                membership = {"user_id": user_id, "group_id": group_id}
                connection.execute(insert(auth_user_groups).values(membership))
            if kind.via == "token":
                token = create_token(connection, user_id)
                headers[kind.name] = {"Authorization": f"Bearer {token}"}
            else:
                headers[kind.name] = basic(name, "pass")
    return headers


class Served(NamedTuple):
    readapi: ReadapiProcess
    engine: Engine
    headers: dict[str, dict[str, str]]
    workers: set[int]


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def served(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Served]:
    pg_template = request.getfixturevalue("pg_template") if request.param == "postgres" else ""
    directory = tmp_path_factory.mktemp("revocation")
    with database_env(request.param, pg_template, directory) as env:
        engine = create_sqlalchemy_engine(load_settings(env))
        headers = seed(engine)
        readapi = ReadapiProcess(env, workers=2)
        try:
            readapi.start()
            workers = readapi.worker_pids()
            assert len(workers) == 2
            yield Served(readapi, engine, headers, workers)
        finally:
            readapi.stop()
            engine.dispose()


def answers_until_every_worker(served: Served, headers, status: int, event_name: str, pick):
    """Requests on fresh connections until each worker logged `event_name` for one that
    `pick` accepts; every answer must have `status`. Returns the requests made."""
    seen: set[int] = set()
    made = 0
    while seen != served.workers:
        assert made < MAX_REQUESTS, f"only workers {seen} of {served.workers} answered"
        response = served.readapi.request("GET", "/datapoint/", headers=headers)
        made += 1
        assert response.status_code == status, response.text
        event = served.readapi.next_event(event_name)
        assert event["worker"] in served.workers
        if pick(event):
            seen.add(event["worker"])
    return made


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_revocation_holds_at_once_in_every_worker(served: Served, kind: Kind):
    headers = served.headers[kind.name]
    served.readapi.skip_events()
    # Each worker answers from its cache: without the version check it would go on doing so.
    answers_until_every_worker(served, headers, 200, "authenticated", lambda e: e["cached"])
    with served.engine.begin() as connection:
        connection.execute(
            text(kind.revoke),
            {"name": f"u_{kind.name}", "group": f"g_{kind.name}", "hash": hash_password("new")},
        )
    # No waiting: the very next request, on whichever worker, is refused.
    refusal = "authentication_refused" if kind.refused == 401 else "permission_refused"
    answers_until_every_worker(served, headers, kind.refused, refusal, lambda e: True)


def _version(engine: Engine) -> int:
    with engine.connect() as connection:
        return current_credentials_version(connection)


def test_only_writes_that_can_revoke_bump_the_version(db_env: dict[str, str]):
    engine = create_sqlalchemy_engine(load_settings(db_env))
    try:
        start = _version(engine)
        seed(engine)  # new users, groups, tokens: the link rows count (permissions can grow)
        after_seed = _version(engine)
        assert after_seed > start
        with engine.begin() as connection:
            user_id = create_user(connection, "fresh", "pass")
            create_token(connection, user_id)
            connection.execute(
                update(auth_user)
                .where(auth_user.c.username == "u_deactivated")
                .values(last_login=1_800_000_000_000, email="a@b.c", first_name="A")
            )
            connection.execute(
                insert(admin_session).values(key_hash="0" * 64, user_id=user_id, expires_ms=1)
            )
            connection.execute(
                insert(login_failure).values(key_hash="1" * 64, failures=1, window_start_ms=1)
            )
            connection.execute(update(api_token).values(label=api_token.c.label))
        # The last statement rewrote every token row (unchanged): that counts, as any token
        # update does; everything before it did not.
        bumped_by_tokens = _version(engine) - after_seed
        with engine.connect() as connection:
            tokens = connection.execute(text("SELECT count(*) FROM api_token")).scalar_one()
        assert bumped_by_tokens == tokens
        for kind in KINDS:
            before = _version(engine)
            with engine.begin() as connection:
                connection.execute(
                    text(kind.revoke),
                    {"name": f"u_{kind.name}", "group": f"g_{kind.name}", "hash": "h"},
                )
            assert _version(engine) > before, kind.name
    finally:
        engine.dispose()
