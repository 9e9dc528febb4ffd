"""ACTIVATE_*_EXTENSION gate the routes as in the original; permissions per model and action."""

from __future__ import annotations

import json

import pytest

from tests.readapi.conftest import Scene, basic

JSON = {"Content-Type": "application/json"}
VALUE = b'{"value": "1", "timestamp": 1795840310439}'
SETPOINT = b'{"setpoint": null, "timestamp": 1795840310439}'
SCHEDULE = b'{"schedule": [], "timestamp": 1795840310439}'


def status(client, method: str, path: str, body: bytes | None = None) -> int:
    return client.request(method, path, content=body, headers=JSON if body else None).status_code


def route_statuses(client) -> dict[str, int]:
    return {
        "value POST": status(client, "POST", "/datapoint/101/value/", VALUE),
        "last_value": status(client, "GET", "/datapoint/last_value/"),
        "value GET": status(client, "GET", "/datapoint/101/value/"),
        "value PUT": status(client, "PUT", "/datapoint/101/value/", b"[]"),
        "value DELETE": status(client, "DELETE", "/datapoint/101/value/1795840310439/"),
        "setpoint POST": status(client, "POST", "/datapoint/101/setpoint/", SETPOINT),
        "schedule POST": status(client, "POST", "/datapoint/101/schedule/", SCHEDULE),
        "last_setpoint": status(client, "GET", "/datapoint/last_setpoint/"),
        "last_schedule": status(client, "GET", "/datapoint/last_schedule/"),
        "setpoint GET": status(client, "GET", "/datapoint/101/setpoint/"),
        "schedule PUT": status(client, "PUT", "/datapoint/101/schedule/", b"[]"),
        "schedule DELETE": status(client, "DELETE", "/datapoint/101/schedule/1795840310439/"),
    }


@pytest.mark.parametrize(
    ("control", "history", "expected"),
    [
        (
            "FALSE",
            "FALSE",
            {
                "value POST": 201,
                "last_value": 200,
                "value GET": 405,
                "value PUT": 405,
                "value DELETE": 404,
                "setpoint POST": 404,
                "schedule POST": 404,
                "last_setpoint": 404,
                "last_schedule": 404,
                "setpoint GET": 404,
                "schedule PUT": 404,
                "schedule DELETE": 404,
            },
        ),
        (
            "FALSE",
            "TRUE",
            {
                "value POST": 201,
                "last_value": 200,
                "value GET": 200,
                "value PUT": 200,
                "value DELETE": 204,  # the POST above was stored: history is on
                "setpoint POST": 404,
                "schedule POST": 404,
                "last_setpoint": 404,
                "last_schedule": 404,
                "setpoint GET": 404,
                "schedule PUT": 404,
                "schedule DELETE": 404,
            },
        ),
        (
            "TRUE",
            "FALSE",
            {
                "value POST": 201,
                "last_value": 200,
                "value GET": 405,
                "value PUT": 405,
                "value DELETE": 404,
                "setpoint POST": 201,
                "schedule POST": 201,
                "last_setpoint": 200,
                "last_schedule": 200,
                "setpoint GET": 405,
                "schedule PUT": 405,
                "schedule DELETE": 404,
            },
        ),
        (
            "TRUE",
            "TRUE",
            {
                "value POST": 201,
                "last_value": 200,
                "value GET": 200,
                "value PUT": 200,
                "value DELETE": 204,
                "setpoint POST": 201,
                "schedule POST": 201,
                "last_setpoint": 200,
                "last_schedule": 200,
                "setpoint GET": 200,
                "schedule PUT": 200,
                "schedule DELETE": 204,
            },
        ),
    ],
)
def test_extension_flags(sqlite_env, unique_name, make_client, control, history, expected):
    from tests.readapi.conftest import seed_scene

    scene = seed_scene(sqlite_env, unique_name)
    client = make_client(
        scene, ACTIVATE_CONTROL_EXTENSION=control, ACTIVATE_HISTORY_EXTENSION=history
    )
    assert route_statuses(client) == expected
    # Without history the last value is still kept, and the history table stays empty.
    last = client.get("/datapoint/last_value/").json()["msgs_by_datapoint_id"]
    assert last["101"] == {"value": "1", "timestamp": 1795840310439}
    later = b'{"value": "2", "timestamp": 1795840310500}'
    assert status(client, "POST", "/datapoint/101/value/", later) == 201
    rows = scene.execute("SELECT count(*) FROM datapoint_value")[0][0]
    assert rows == (1 if history == "TRUE" else 0)
    scene.engine.dispose()


def test_permissions_per_model_and_action(client, scene: Scene):
    viewer = scene.user("viewer", "view_datapoint", "view_datapointvalue")
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    assert client.get("/datapoint/", headers=as_viewer).status_code == 200
    assert client.get("/datapoint/2/value/", headers=as_viewer).status_code == 200
    assert client.get("/datapoint/last_value/", headers=as_viewer).status_code == 200
    denied = client.post("/datapoint/101/value/", content=VALUE, headers={**JSON, **as_viewer})
    assert denied.status_code == 403
    assert denied.content == b'{"detail":"You do not have permission to perform this action."}'
    assert client.get("/datapoint/101/setpoint/", headers=as_viewer).status_code == 403
    assert (
        client.put("/datapoint/", content=b"[]", headers={**JSON, **as_viewer}).status_code == 403
    )
    assert client.get("/connector/", headers=as_viewer).status_code == 403
    nobody = {"Authorization": f"Bearer {scene.nobody_token}"}
    assert client.get("/datapoint/", headers=nobody).status_code == 403
    assert client.get("/datapoint/", headers=basic("nobody", "pass")).status_code == 403
    assert client.get("/metrics/", headers=nobody).status_code == 403


def test_group_permissions(client, scene: Scene):
    scene.user("grouped")
    scene.execute("INSERT INTO auth_group (id, name) VALUES (7, 'writers')")
    scene.execute(
        "INSERT INTO auth_group_permissions (group_id, permission_id) "
        "SELECT 7, id FROM auth_permission WHERE codename = 'add_datapointvalue'"
    )
    scene.execute(
        "INSERT INTO auth_user_groups (user_id, group_id) "
        "SELECT id, 7 FROM auth_user WHERE username = 'grouped'"
    )
    headers = {**JSON, **basic("grouped", "pass")}
    assert client.post("/datapoint/101/value/", content=VALUE, headers=headers).status_code == 201
    assert client.get("/datapoint/", headers=headers).status_code == 403


def test_inactive_user_and_malformed_headers(client, scene: Scene):
    token = scene.user("leaver", "view_datapoint")
    scene.execute("UPDATE auth_user SET is_active = false WHERE username = 'leaver'")
    response = client.get("/datapoint/", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"detail": "User inactive or deleted."}
    cases = {
        "Basic": "Invalid basic header. No credentials provided.",
        "Basic a b": "Invalid basic header. Credentials string should not contain spaces.",
        "Basic !!!": "Invalid basic header. Credentials not correctly base64 encoded.",
        "Bearer": "Invalid token header. No credentials provided.",
        "Bearer a b": "Invalid token header. Token string should not contain spaces.",
    }
    for header, message in cases.items():
        response = client.get("/datapoint/", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.json() == {"detail": message}
    # DRF's own keyword works too.
    response = client.get("/datapoint/", headers={"Authorization": f"Token {scene.admin_token}"})
    assert response.status_code == 200


def test_is_active_needs_change_permission(client, scene: Scene):
    adder = scene.user("adder", "add_datapoint", "view_datapoint")
    headers = {**JSON, "Authorization": f"Bearer {adder}"}
    item = {
        "connector": {"name": scene.connector_name},
        "key_in_connector": "new",
        "type": "sensor",
    }
    denied = client.post(
        "/datapoint/", content=json.dumps([{**item, "is_active": True}]), headers=headers
    )
    assert denied.status_code == 403
    created = client.post("/datapoint/", content=json.dumps([item]), headers=headers)
    assert created.status_code == 201
    assert "is_active" not in created.json()[0]
    assert client.get("/datapoint/?key_in_connector=new", headers=headers).json() == []
    inactive = client.get("/datapoint/?is_active=false", headers=headers).json()
    assert [d["key_in_connector"] for d in inactive] == ["new"]
    activated = client.put(
        "/datapoint/", content=json.dumps([{**item, "is_active": True}]), headers=JSON
    )
    assert activated.status_code == 200
    assert activated.json()[0]["is_active"] is True
    assert [
        d["key_in_connector"] for d in client.get("/datapoint/?key_in_connector=new").json()
    ] == ["new"]


def test_credential_cache_holds_until_the_version_changes_or_a_minute_passes(scene: Scene):
    """A verified credential is reused while the credentials version stays; a revoking
    write (here a deactivation) ends it at once, and an entry expires after 60 s anyway."""
    import asyncio
    import base64

    from sqlalchemy import update

    from readapi.accounts import current_credentials_version
    from readapi.auth import Authenticator
    from readapi.db import open_database
    from readapi.errors import ApiError
    from schema.tables import auth_user

    now = [1000.0]
    database = open_database(scene.settings)
    authenticator = Authenticator(database, clock=lambda: now[0])
    header = "Basic " + base64.b64encode(b"admin:pass").decode()

    def version() -> int:
        with database.connect() as connection:
            return current_credentials_version(connection)

    principal = asyncio.run(authenticator.authenticate(header))
    assert principal is not None and principal.is_superuser
    before = version()
    # Writes that take nothing away (a login time, an e-mail address) keep the version.
    with scene.engine.begin() as connection:
        connection.execute(
            update(auth_user)
            .where(auth_user.c.username == "admin")
            .values(last_login=1_800_000_000_000, email="a@b.c")
        )
    assert version() == before
    now[0] += 59
    assert authenticator.cached(header, before) == principal
    now[0] += 2
    assert authenticator.cached(header, before) is None
    assert asyncio.run(authenticator.authenticate(header)) == principal
    scene.execute("UPDATE auth_user SET is_active = false WHERE username = 'admin'")
    assert version() == before + 1
    assert authenticator.cached(header, before + 1) is None
    with pytest.raises(ApiError) as refused:
        asyncio.run(authenticator.authenticate(header))
    assert refused.value.body == {"detail": "User inactive or deleted."}
    database.dispose()
