"""Fixtures for readapi: a running app (Litestar TestClient) on a real database and broker.

`seed` writes the contract's scene: connector "bench-conn" with sensors 1 and 2 and actuator
101, all active, and users: a superuser (admin/pass, with a token), and a user without any
permission (nobody/pass).
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Callable, Iterator

import pytest
from litestar.testing import TestClient
from sqlalchemy import insert, text

from readapi.accounts import create_token, create_user
from readapi.app import create_app
from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings
from schema.tables import connector, datapoint

ADMIN = ("admin", "pass")


def basic(username: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


class Scene:
    def __init__(self, env: dict[str, str], connector_name: str) -> None:
        self.env = env
        self.connector_name = connector_name
        self.settings = load_settings(env)
        self.engine = create_sqlalchemy_engine(self.settings)
        self.admin_token = ""
        self.nobody_token = ""

    @property
    def postgres(self) -> bool:
        return self.settings.uses_postgres

    def user(self, username: str, *permissions: str, password: str = "pass") -> str:
        """Create a user with these permissions; return a token of theirs."""
        with self.engine.begin() as connection:
            user_id = create_user(connection, username, password, permissions=permissions)
            return create_token(connection, user_id)

    def datapoint(self, datapoint_id: int, key: str, type_: str, **values) -> None:
        with self.engine.begin() as connection:
            connector_id = connection.execute(
                text("SELECT id FROM connector WHERE name = :n"), {"n": self.connector_name}
            ).scalar_one()
            connection.execute(
                insert(datapoint).values(
                    id=datapoint_id,
                    connector_id=connector_id,
                    key_in_connector=key,
                    type=type_,
                    is_active=values.pop("is_active", True),
                    data_format=values.pop("data_format", "unknown"),
                    description=values.pop("description", ""),
                    unit=values.pop("unit", ""),
                    **values,
                )
            )
            if self.postgres:
                connection.execute(
                    text("SELECT setval('datapoint_id_seq', (SELECT max(id) FROM datapoint))")
                )

    def execute(self, statement: str, params: dict | None = None) -> list:
        with self.engine.begin() as connection:
            result = connection.execute(text(statement), params or {})
            return result.all() if result.returns_rows else []


def seed_scene(env: dict[str, str], connector_name: str = "bench-conn") -> Scene:
    scene = Scene(env, connector_name)
    with scene.engine.begin() as connection:
        connection.execute(insert(connector).values(id=1, name=connector_name, date_added=0))
        if scene.postgres:
            connection.execute(
                text("SELECT setval('connector_id_seq', (SELECT max(id) FROM connector))")
            )
        admin_id = create_user(connection, *ADMIN, superuser=True)
        scene.admin_token = create_token(connection, admin_id)
        nobody_id = create_user(connection, "nobody", "pass")
        scene.nobody_token = create_token(connection, nobody_id)
    scene.datapoint(1, "bench_s_0000", "sensor")
    scene.datapoint(2, "bench_s_0001", "sensor")
    scene.datapoint(101, "bench_a_00", "actuator")
    return scene


@pytest.fixture
def scene(db_env: dict[str, str], unique_name: str) -> Iterator[Scene]:
    """The contract's scene; the connector gets a unique name so MQTT tests do not meet."""
    built = seed_scene(db_env, unique_name)
    yield built
    built.engine.dispose()


@pytest.fixture
def pg_scene(pg_env: dict[str, str], unique_name: str) -> Iterator[Scene]:
    built = seed_scene(pg_env, unique_name)
    yield built
    built.engine.dispose()


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(request: pytest.FixtureRequest) -> Iterator[ClientFactory]:
    """make_client(scene, **env_overrides) -> a started TestClient with admin's Basic auth."""
    clients: list[TestClient] = []

    def factory(scene: Scene, auth: dict | None = None, **overrides: str) -> TestClient:
        settings = load_settings({**scene.env, **overrides})
        with warnings.catch_warnings():
            # Django's test host name, which the allowed-hosts check accepts like Django does.
            warnings.simplefilter("ignore", UserWarning)
            client = TestClient(create_app(settings), base_url="http://testserver")
        client.__enter__()
        client.headers.update(auth if auth is not None else basic(*ADMIN))
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(scene: Scene, make_client: ClientFactory) -> TestClient:
    return make_client(scene)
