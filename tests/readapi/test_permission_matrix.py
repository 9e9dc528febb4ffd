"""Every route of the app x every method it serves x every kind of user.

The routes are read from the Litestar app itself, so a route added without an entry in MATRIX
fails here, as does an entry whose route is gone. For each route and method:

- anonymous: 401 (JSON, WWW-Authenticate) where a permission is needed; never for public ones;
- a read-only user (every view_* permission, nothing else): allowed to read, 403 on writes;
- admin (superuser): never 401/403;
- a user with exactly the route's permission: never 401/403; a user with every permission
  but that one: 403. This pins each route to its permission, not only to "some" permission.

"Allowed" means any answer but 401/403, and never a 5xx: 2xx, or a 4xx about the request.
Methods a route does not serve answer 405 in JSON, to everyone.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator

import pytest
from litestar.routes import HTTPRoute

from readapi.app import create_app
from readapi.datapoints_store import create_connector
from schema.settings import load_settings
from schema.tables import permission_codenames
from tests.readapi.conftest import Scene, seed_scene

PUBLIC = None
KINDS = {
    "value": "datapointvalue",
    "setpoint": "datapointsetpoint",
    "schedule": "datapointschedule",
}
TIMESTAMP = 1795840310439

# (method, route path as Litestar lists it) -> the permission it needs, or PUBLIC.
MATRIX: dict[tuple[str, str], str | None] = {
    ("GET", "/datapoint"): "view_datapoint",
    ("POST", "/datapoint"): "add_datapoint",
    ("PUT", "/datapoint"): "change_datapoint",
    ("GET", "/datapoint/{dp_id:int}"): "view_datapoint",
    ("GET", "/connector"): "view_connector",
    ("POST", "/connector"): "add_connector",
    ("DELETE", "/connector/{connector_id:int}"): "delete_connector",
    ("GET", "/metrics"): "view_datapoint",
    ("POST", "/auth/token"): PUBLIC,
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/schema"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/static/swagger-ui/{file_path:path}"): PUBLIC,
    ("HEAD", "/static/swagger-ui/{file_path:path}"): PUBLIC,
    ("GET", "/_openapi"): PUBLIC,
    ("GET", "/_openapi/openapi.json"): PUBLIC,
    ("GET", "/_openapi/{path:str}"): PUBLIC,
}
for _kind, _model in KINDS.items():
    MATRIX |= {
        ("GET", f"/datapoint/{{dp_id:int}}/{_kind}"): f"view_{_model}",
        ("POST", f"/datapoint/{{dp_id:int}}/{_kind}"): f"add_{_model}",
        ("PUT", f"/datapoint/{{dp_id:int}}/{_kind}"): f"change_{_model}",
        ("GET", f"/datapoint/last_{_kind}"): f"view_{_model}",
        ("GET", f"/datapoint/{{dp_id:int}}/{_kind}/{{timestamp:int}}"): f"view_{_model}",
        ("DELETE", f"/datapoint/{{dp_id:int}}/{_kind}/{{timestamp:int}}"): f"delete_{_model}",
    }

# The admin UI under /admin/ has its own session login and is tested by its own tests.
EXCLUDED_PREFIX = "/admin"
JSON = {"Content-Type": "application/json"}
ALL_CODENAMES = [codename for codename, _ in permission_codenames()]
READ_ONLY = [c for c in ALL_CODENAMES if c.startswith("view_")]
_PARAMETER = re.compile(r"\{(\w+):\w+\}")


def served_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route handler, without Litestar's automatic OPTIONS."""
    found = set()
    for route in app.routes:
        if route.path == EXCLUDED_PREFIX or route.path.startswith(EXCLUDED_PREFIX + "/"):
            continue
        assert isinstance(route, HTTPRoute), f"{route.path}: a kind of route the matrix lacks"
        for handler in route.route_handlers:
            for method in handler.http_methods - {"OPTIONS"}:
                found.add((method, route.path))
    return found


class Requests:
    """Concrete requests for route templates; each call gives a fresh, plausible body."""

    def __init__(self, scene: Scene, doomed_connector_id: int) -> None:
        self.scene = scene
        self.values = {"dp_id": "101", "timestamp": str(TIMESTAMP)}
        self.values["connector_id"] = str(doomed_connector_id)
        self.values["file_path"] = "swagger-ui.css"
        self.values["path"] = "openapi.json"
        self.counter = itertools.count()

    def url(self, path: str) -> str:
        return _PARAMETER.sub(lambda m: self.values[m.group(1)], path) + (
            "" if path.startswith(("/static", "/_openapi")) or path == "/" else "/"
        )

    def body(self, method: str, path: str) -> bytes | None:
        n = next(self.counter)
        connector = self.scene.connector_name
        if path == "/datapoint" and method == "POST":
            item = {"connector": {"name": connector}, "key_in_connector": f"m{n}", "type": "sensor"}
            return json.dumps([item]).encode()
        if path == "/datapoint" and method == "PUT":
            item = {
                "connector": {"name": connector},
                "key_in_connector": "bench_s_0000",
                "type": "sensor",
                "description": f"edit {n}",
            }
            return json.dumps([item]).encode()
        if path == "/connector":
            return json.dumps({"name": f"matrix-{n}"}).encode()
        if path == "/auth/token":
            return b'{"username": "admin", "password": "pass"}'
        if method == "PUT":
            return b"[]"
        kind = path.rsplit("/", 1)[1]
        if method == "POST" and kind in KINDS:
            message = {"value": '"1"', "setpoint": [], "schedule": []}[kind]
            return json.dumps({kind: message, "timestamp": TIMESTAMP + n}).encode()
        return None if method in ("GET", "HEAD", "DELETE") else b"{}"


def test_every_route_is_in_the_matrix(tmp_path):
    settings = load_settings(
        {
            "ACTIVATE_CONTROL_EXTENSION": "TRUE",
            "ACTIVATE_HISTORY_EXTENSION": "TRUE",
            "BEMCOM_DATA_DIR": str(tmp_path),
        }
    )
    served = served_routes(create_app(settings))
    assert sorted(served - set(MATRIX)) == [], "routes missing from MATRIX"
    assert sorted(set(MATRIX) - served) == [], "MATRIX entries for routes that do not exist"


@pytest.fixture
def matrix_scene(sqlite_env: dict[str, str], unique_name: str) -> Iterator[Scene]:
    # Who may do what does not depend on the database: SQLite, for speed.
    scene = seed_scene(sqlite_env, unique_name)
    yield scene
    scene.engine.dispose()


@pytest.fixture
def matrix_users(matrix_scene: Scene) -> dict[str, dict[str, str]]:
    scene = matrix_scene
    """Name -> Authorization header; tokens, so that no password hash slows the run."""

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    users = {
        "anonymous": {},
        "admin": bearer(scene.admin_token),
        "read-only": bearer(scene.user("reader", *READ_ONLY)),
    }
    needed = sorted({p for p in MATRIX.values() if p is not PUBLIC})
    for codename in needed:
        users[f"only {codename}"] = bearer(scene.user(f"only_{codename}", codename))
        others = [c for c in ALL_CODENAMES if c != codename]
        users[f"all but {codename}"] = bearer(scene.user(f"but_{codename}", *others))
    return users


def test_permission_matrix(matrix_scene: Scene, make_client, matrix_users):
    scene = matrix_scene
    client = make_client(scene, auth={})
    with scene.engine.begin() as connection:
        doomed = create_connector(connection, "matrix-doomed")
    requests = Requests(scene, doomed)
    served = served_routes(client.app)
    problems: list[str] = []

    def call(user: str, method: str, path: str):
        headers = {**matrix_users[user], **JSON}
        return client.request(
            method, requests.url(path), content=requests.body(method, path), headers=headers
        )

    def expect(user: str, method: str, path: str, wanted: str) -> None:
        response = call(user, method, path)
        status = response.status_code
        label = f"{method} {path} as {user}: {status} {response.text[:120]}"
        is_json = response.headers.get("content-type", "").startswith("application/json")
        if status >= 500:
            problems.append(label)
        elif wanted == "allowed" and status in (401, 403):
            problems.append(f"{label} (wanted: allowed)")
        elif wanted == "401" and (
            status != 401
            or not is_json
            or response.headers.get("www-authenticate") != 'Basic realm="api"'
        ):
            problems.append(f"{label} (wanted: 401)")
        elif wanted == "403" and (status != 403 or not is_json):
            problems.append(f"{label} (wanted: 403)")

    for (method, path), codename in sorted(MATRIX.items()):
        if (method, path) not in served:
            continue
        if codename is PUBLIC:
            for user in ("anonymous", "read-only", "admin"):
                expect(user, method, path, "allowed")
            continue
        expect("anonymous", method, path, "401")
        expect("read-only", method, path, "allowed" if codename in READ_ONLY else "403")
        expect(f"only {codename}", method, path, "allowed")
        expect(f"all but {codename}", method, path, "403")
        # Admin last: a DELETE it is allowed really deletes.
        expect("admin", method, path, "allowed")
    # Methods a route does not serve: 405 in JSON, whoever asks.
    paths = {path for _, path in served}
    for path in sorted(paths):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if (method, path) in served:
                continue
            for user in ("anonymous", "admin"):
                response = call(user, method, path)
                if response.status_code != 405 or "json" not in response.headers["content-type"]:
                    problems.append(f"{method} {path} as {user}: {response.status_code}, not 405")
    assert problems == []
    # The allowed DELETE did delete (SQLite may give the id to a connector created since).
    assert scene.execute("SELECT id FROM connector WHERE name = 'matrix-doomed'") == []
