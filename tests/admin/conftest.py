"""Fixtures for the admin UI: the application (Litestar TestClient) on a real database and
broker, users with and without permissions, and a client that logs in like a browser.

Every state-changing request carries what a browser would send: the page's CSRF token and
an Origin header naming the host.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, insert, text, update

from readapi.accounts import create_user
from readapi.app import create_app
from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings
from schema.tables import auth_user, connector, datapoint

ORIGIN = "http://testserver"
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"')


def page_token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1) or found.group(2)


class AdminClient:
    """A TestClient that behaves like a browser tab on the admin UI."""

    def __init__(self, client: TestClient, root_path: str = "", origin: str = ORIGIN) -> None:
        self.client = client
        self.root = f"{root_path}/admin"
        self.origin = origin

    def url(self, path: str) -> str:
        return f"{self.root}/{path.lstrip('/')}"

    def get(self, path: str, **kwargs):
        return self.client.get(self.url(path), **kwargs)

    def token(self) -> str:
        return page_token(self.client.get(self.url("login")).text)

    def post(self, path: str, data: dict | list, *, token: str | None = None, **kwargs):
        """POST a form as the page would: with the session's token and our Origin."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        pairs.append(("csrf_token", token if token is not None else self.token()))
        form: dict[str, list[str]] = {}
        for key, value in pairs:
            form.setdefault(key, []).append(str(value))
        headers = {"Origin": self.origin, **kwargs.pop("headers", {})}
        return self.client.post(
            self.url(path), data=form, headers=headers, follow_redirects=False, **kwargs
        )

    def delete(self, path: str, **kwargs):
        headers = {"Origin": self.origin, "X-CSRFToken": self.token(), **kwargs.pop("headers", {})}
        return self.client.delete(self.url(path), headers=headers, **kwargs)

    def login(self, username: str, password: str = "pass"):
        response = self.post("login", {"username": username, "password": password})
        return response


class AdminScene:
    """A migrated database with users: admin (superuser), viewer (staff, may view
    connectors and datapoints), editor (staff, may also change datapoints and add, change
    and delete connectors), outsider (not staff)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.settings = load_settings(env)
        self.engine: Engine = create_sqlalchemy_engine(self.settings)
        with self.engine.begin() as connection:
            create_user(connection, "admin", "pass", superuser=True)
            self._staff(connection, "viewer", "view_connector", "view_datapoint")
            self._staff(
                connection,
                "editor",
                "view_connector",
                "add_connector",
                "change_connector",
                "delete_connector",
                "view_datapoint",
                "change_datapoint",
            )
            create_user(connection, "outsider", "pass", permissions=("view_connector",))

    @staticmethod
    def _staff(connection, username: str, *permissions: str) -> None:
        user_id = create_user(connection, username, "pass", permissions=permissions)
        connection.execute(update(auth_user).where(auth_user.c.id == user_id).values(is_staff=True))

    def connector(self, name: str) -> int:
        with self.engine.begin() as connection:
            return connection.execute(
                insert(connector).values(name=name, date_added=0).returning(connector.c.id)
            ).scalar_one()

    def datapoint(self, connector_id: int, key: str, type_: str = "sensor", **values) -> int:
        with self.engine.begin() as connection:
            return connection.execute(
                insert(datapoint)
                .values(
                    connector_id=connector_id,
                    key_in_connector=key,
                    type=type_,
                    is_active=values.pop("is_active", False),
                    data_format=values.pop("data_format", "unknown"),
                    description="",
                    unit=values.pop("unit", ""),
                    **values,
                )
                .returning(datapoint.c.id)
            ).scalar_one()

    def scalar(self, statement: str, **params):
        with self.engine.connect() as connection:
            return connection.execute(text(statement), params).scalar()


@pytest.fixture
def admin_scene(db_env: dict[str, str]) -> Iterator[AdminScene]:
    built = AdminScene(db_env)
    yield built
    built.engine.dispose()


ClientFactory = Callable[..., AdminClient]


@pytest.fixture
def make_admin_client() -> Iterator[ClientFactory]:
    """make_admin_client(scene, **env_overrides) -> a started AdminClient (not logged in)."""
    clients: list[TestClient] = []

    def factory(scene: AdminScene, base_url: str = ORIGIN, **overrides: str) -> AdminClient:
        settings = load_settings({**scene.env, **overrides})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            client = TestClient(create_app(settings), base_url=base_url)
        client.__enter__()
        clients.append(client)
        return AdminClient(client, settings.root_path, base_url)

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def admin(admin_scene: AdminScene, make_admin_client: ClientFactory) -> AdminClient:
    """A client logged in as the superuser."""
    client = make_admin_client(admin_scene)
    assert client.login("admin").status_code == 302
    return client
