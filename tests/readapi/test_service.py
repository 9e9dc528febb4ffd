"""Token endpoint, health, metrics, OpenAPI/Swagger, ROOT_PATH, allowed hosts, filters."""

from __future__ import annotations

import json
import re

import pytest
from litestar import Response, get

from tests.readapi.conftest import Scene, basic

JSON = {"Content-Type": "application/json"}


def test_token_endpoint(client, scene: Scene):
    anonymous = {"Authorization": ""}
    issued = client.post(
        "/auth/token/",
        content=b'{"username": "admin", "password": "pass"}',
        headers={**JSON, **anonymous},
    )
    assert issued.status_code == 200
    token = issued.json()["token"]
    assert list(issued.json()) == ["token"] and len(token) == 40
    listed = client.get("/datapoint/", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    # Only its hash is stored.
    assert (
        scene.execute("SELECT count(*) FROM api_token WHERE key_hash = :t", {"t": token})[0][0] == 0
    )
    wrong = client.post(
        "/auth/token/",
        content=b'{"username": "admin", "password": "x"}',
        headers={**JSON, **anonymous},
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}
    missing = client.post("/auth/token/", content=b"{}", headers={**JSON, **anonymous})
    assert missing.json() == {
        "username": ["This field is required."],
        "password": ["This field is required."],
    }


def test_health(client, scene: Scene):
    assert client.get("/health/live", headers={"Authorization": ""}).json() == {"status": "ok"}
    ready = client.get("/health/ready", headers={"Authorization": ""})
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_health_ready_without_broker(scene: Scene, make_client):
    client = make_client(scene, MQTT_BROKER_PORT="1")  # nothing listens there
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["broker"] == "unreachable"
    # A POST cannot be published: a JSON 503, not a silent drop.
    response = client.post(
        "/datapoint/101/value/", content=b'{"value": "1", "timestamp": 1795840310439}', headers=JSON
    )
    assert response.status_code == 503
    assert "broker" in response.json()["detail"]


def test_metrics(client, scene: Scene):
    client.get("/datapoint/")
    response = client.get("/metrics/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'readapi_http_requests_total{method="GET",route="datapoint-list",status="200"} 1.0'
        in response.text
    )
    assert client.get("/metrics/", headers={"Authorization": ""}).status_code == 401
    viewer = scene.user("viewer", "view_datapoint")
    assert client.get("/metrics/", headers={"Authorization": f"Bearer {viewer}"}).status_code == 200


def test_openapi_and_swagger(client, scene: Scene):
    document = client.get("/schema/", headers={"Authorization": ""})
    assert document.status_code == 200
    schema = document.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    # As clients call them: with the original's trailing slash.
    for path in (
        "/datapoint/",
        "/datapoint/last_value/",
        "/datapoint/{dp_id}/value/",
        "/datapoint/{dp_id}/value/{timestamp}/",
        "/connector/",
        "/auth/token/",
    ):
        assert path in paths, path
    post_value = paths["/datapoint/{dp_id}/value/"]["post"]
    assert post_value["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValueIn"
    }
    assert "ValueOut" in schema["components"]["schemas"]
    page = client.get("/", headers={"Authorization": ""})
    assert page.status_code == 200
    assert "swagger-ui" in page.text and '"/schema/"' in page.text
    # Everything the page loads comes from this service: it must work in an offline building.
    assert "http" not in page.text
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        answer = client.get(asset, headers={"Authorization": ""})
        assert answer.status_code == 200, asset
        assert len(answer.content) > 1000


def test_root_path(scene: Scene, make_client):
    client = make_client(scene, ROOT_PATH="bemcom/")
    assert client.get("/bemcom/datapoint/").status_code == 200
    assert client.get("/datapoint/").status_code == 404
    assert client.get("/bemcom/datapoint/last_value/").status_code == 200
    assert '"/bemcom/schema/"' in client.get("/bemcom/").text
    assert client.get("/bemcom/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert "/bemcom/datapoint/{dp_id}/value/" in client.get("/bemcom/schema/").json()["paths"]


KINDS = ("value", "setpoint", "schedule")


@pytest.mark.parametrize("root_path", ["", "bemcom/"])
def test_every_documented_get_answers_at_its_documented_url(
    scene: Scene, make_client, root_path: str
):
    """A client generated from /schema/ calls exactly the documented paths: each GET answers
    there, neither 404 nor a redirect to another spelling."""
    client = make_client(scene, ROOT_PATH=root_path)
    prefix = f"/{root_path.rstrip('/')}" if root_path else ""
    stamp = 1795840275488
    for kind, text in (("value", '"22.30"'), ("setpoint", None), ("schedule", None)):
        item = {"from_timestamp": None, "to_timestamp": None}
        body = (
            {"value": text}
            if kind == "value"
            else {kind: [{**item, "preferred_value" if kind == "setpoint" else "value": "1"}]}
        )
        answer = client.put(
            f"{prefix}/datapoint/101/{kind}/",
            content=json.dumps([{**body, "timestamp": stamp}]),
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
    paths = client.get(f"{prefix}/schema/").json()["paths"]
    called = []
    for path, item in paths.items():
        if "get" not in item:
            continue
        assert path.startswith(f"{prefix}/"), path
        url = path.replace("{dp_id}", "101").replace("{timestamp}", str(stamp))
        assert "{" not in url, path
        answer = client.get(url, follow_redirects=False)
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:200])
        called.append(path.removeprefix(prefix))
    # One message is answered as the original answers it, like every other read.
    one = client.get(f"{prefix}/datapoint/101/value/{stamp}/").json()
    assert one == {"value": "22.3", "timestamp": stamp}
    assert sorted(called) == sorted(
        [
            "/datapoint/",
            "/connector/",
            "/datapoint/{dp_id}/",
            "/datapoint/last_value/",
            "/datapoint/last_setpoint/",
            "/datapoint/last_schedule/",
            *(f"/datapoint/{{dp_id}}/{k}/" for k in ("value", "setpoint", "schedule")),
            *(
                f"/datapoint/{{dp_id}}/{k}/{{timestamp}}/"
                for k in ("value", "setpoint", "schedule")
            ),
            "/health/live",
            "/health/ready",
            "/metrics/",
        ]
    )


def test_allowed_hosts(scene: Scene, make_client):
    client = make_client(scene, DJANGO_ALLOWED_HOSTS='["bemcom.example.com", ".example.org"]')
    assert client.get("/datapoint/", headers={"Host": "bemcom.example.com"}).status_code == 200
    assert client.get("/datapoint/", headers={"Host": "api.example.org:8080"}).status_code == 200
    assert client.get("/datapoint/", headers={"Host": "localhost:8080"}).status_code == 200
    evil = client.get("/datapoint/", headers={"Host": "evil.com"})
    assert evil.status_code == 400
    assert evil.headers["content-type"] == "application/json"
    assert "evil.com" in evil.json()["detail"]


def test_datapoint_filters(client, scene: Scene):
    name = scene.connector_name
    scene.datapoint(
        3, "Temp_Room", "sensor", short_name="room", unit="°C", data_format="continuous_numeric"
    )
    scene.datapoint(4, "inactive", "sensor", is_active=False)

    def ids(query: str) -> list[int]:
        response = client.get(f"/datapoint/?{query}")
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()]

    assert ids("") == [1, 2, 3, 101]
    assert ids("id__in=3,101,999") == [3, 101]
    assert ids(f"connector__name={name}") == [1, 2, 3, 101]
    assert ids("connector__name=other") == []
    assert ids(f"connector__name__icontains={name[2:8].upper()}") == [1, 2, 3, 101]
    assert ids("key_in_connector=Temp_Room") == [3]
    assert ids("key_in_connector__icontains=temp") == [3]
    assert ids("key_in_connector__icontains=%25") == []  # % is a character, not a wildcard
    assert ids("short_name=room") == [3]
    assert ids("short_name__icontains=OO") == [3]
    assert ids("type=actuator") == [101]
    assert ids("data_format=continuous_numeric") == [3]
    assert ids("data_format__icontains=numeric") == [3]
    assert ids("unit=%C2%B0C") == [3]
    assert ids("unit__icontains=c") == [3]
    assert ids("description__icontains=x") == []
    assert ids("is_active=false") == [4]
    assert ids("type=") == [1, 2, 3, 101]  # an empty filter is no filter
    bad_type = client.get("/datapoint/?type=gauge")
    assert bad_type.status_code == 400
    assert bad_type.json() == {
        "type": ["Select a valid choice. gauge is not one of the available choices."]
    }
    assert client.get("/datapoint/?id__in=1,x").json() == {"id__in": ["Enter a number."]}


def test_datapoint_create_and_errors(client, scene: Scene, unique_name):
    new_connector = f"{unique_name}-restored"
    item = {
        "connector": {"name": new_connector},
        "key_in_connector": "k1",
        "type": "sensor",
        "data_format": "discrete_text",
        "allowed_values": ["on", "off"],
        "short_name": "switch",
    }
    created = client.post("/datapoint/", content=json.dumps([item]), headers=JSON)
    assert created.status_code == 201
    body = created.json()
    assert body[0]["connector"] == {"name": new_connector}
    assert body[0]["allowed_values"] == ["on", "off"]
    again = client.post("/datapoint/", content=json.dumps([item]), headers=JSON)
    assert again.status_code == 400
    assert again.json()[0]["datapoint"].startswith("Datapoint exists already:")
    invalid = client.post(
        "/datapoint/",
        content=json.dumps([{"connector": {}, "type": "gauge", "short_name": "x" * 31}]),
        headers=JSON,
    )
    assert invalid.status_code == 400
    assert invalid.json() == [
        {
            "connector": {"name": ["This field is required."]},
            "key_in_connector": ["This field is required."],
            "type": ['"gauge" is not a valid choice.'],
            "short_name": ["Ensure this field has no more than 30 characters."],
        }
    ]
    missing = client.put(
        "/datapoint/",
        content=json.dumps([{**item, "key_in_connector": "nope"}, item]),
        headers=JSON,
    )
    assert missing.status_code == 400
    assert missing.json()[1] == {}
    assert missing.json()[0]["datapoint"].startswith("No datapoint found matching query:")
    # The discrete datapoint checks values against allowed_values, as the original words it.
    dp_id = body[0]["id"]
    scene.execute("UPDATE datapoint SET type = 'actuator' WHERE id = :i", {"i": dp_id})
    refused = client.post(
        f"/datapoint/{dp_id}/value/",
        content=b'{"value": "\\"dim\\"", "timestamp": 1795840310439}',
        headers=JSON,
    )
    assert refused.json() == {
        "value": ["Value (dim) for discrete datapoint in list of allowed_values (['on', 'off'])."]
    }


def test_malformed_inputs_are_json_4xx(client, scene: Scene):
    cases = [
        ("PUT", "/datapoint/2/value/", b'{"value": "1"}'),
        ("PUT", "/datapoint/2/value/", b'[1, {"value": "1", "timestamp": null}]'),
        ("POST", "/datapoint/", b"\xff\xfe"),
        ("POST", "/datapoint/101/value/", b'{"value": true, "timestamp": 1.5}'),
        ("POST", "/datapoint/101/setpoint/", b'{"setpoint": [1], "timestamp": 1795840310439}'),
        ("GET", "/datapoint/last_value/?datapoint__id__in=a", None),
        ("GET", "/datapoint/2/value/?timestamp__lt=1e999", None),
        ("DELETE", "/datapoint/2/value/abc/", None),
        ("PATCH", "/datapoint/", b"{}"),
        ("POST", "/connector/", b"[]"),
        ("DELETE", "/connector/99999999999/", None),
        ("DELETE", "/connector/-2687296097630827315200/", None),
        ("DELETE", "/datapoint/-99999999999999999999/value/-99999999999999999999999/", None),
    ]
    for method, path, body in cases:
        response = client.request(method, path, content=body, headers=JSON if body else None)
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        assert response.headers["content-type"].startswith("application/json"), (method, path)
        assert response.json(), (method, path)
    # NUL characters, which PostgreSQL cannot store, are refused as DRF refuses them.
    nul_filter = client.get("/datapoint/?connector__name=a%00b")
    assert nul_filter.json() == {"connector__name": ["Null characters are not allowed."]}
    nul_key = client.post(
        "/datapoint/",
        content=json.dumps(
            [{"connector": {"name": "c"}, "key_in_connector": "a\x00", "type": "sensor"}]
        ),
        headers=JSON,
    )
    assert nul_key.json() == [{"key_in_connector": ["Null characters are not allowed."]}]
    nul_user = client.get("/datapoint/", headers=basic("ad\x00min", "pass"))
    assert nul_user.status_code == 401
    nul_token = client.post(
        "/auth/token/", content=b'{"username": "a\\u0000", "password": "x"}', headers=JSON
    )
    assert nul_token.json() == {"username": ["Null characters are not allowed."]}
    # A timestamp far outside any calendar is a valid filter: it clamps, nothing overflows.
    far = client.get("/datapoint/2/value/?timestamp__gte=-99999999999999999999999999")
    assert far.status_code == 200 and far.json() == []
    put_errors = client.put(
        "/datapoint/2/value/",
        content=b'[{"value": "1", "timestamp": 1795840310439}, 1]',
        headers=JSON,
    )
    assert put_errors.json() == [
        {},
        {"non_field_errors": ["Invalid data. Expected a dictionary, but got int."]},
    ]
    not_a_list = client.put("/datapoint/2/value/", content=b"{}", headers=JSON)
    assert not_a_list.json() == {
        "non_field_errors": ['Expected a list of items but got type "dict".']
    }
    wrong_type = client.post(
        "/datapoint/101/value/", content=b"x=1", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    assert wrong_type.json() == {"detail": 'Unsupported media type "text/plain" in request.'}


def test_basic_credentials_are_cached_until_revoked(client, scene: Scene, monkeypatch):
    """After one verification the password is not hashed again per request; a changed
    password is refused at once (the credentials version changed)."""
    from readapi import auth

    hashed: list[str] = []
    real = auth.verify_password

    def counting(stored, password):
        hashed.append(password)
        return real(stored, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    headers = basic("admin", "pass")
    for _ in range(3):
        assert client.get("/datapoint/", headers=headers).status_code == 200
    assert hashed == ["pass"]
    assert client.get("/datapoint/", headers=basic("admin", "other")).status_code == 401
    scene.execute("UPDATE auth_user SET password = 'argon2$broken' WHERE username = 'admin'")
    assert client.get("/datapoint/", headers=headers).status_code == 401
    assert hashed == ["pass", "other", "pass"]


def test_secure_cookie_attributes():
    from readapi.hosts import secure_cookie

    assert secure_cookie(b"sessionid=x; Path=/") == b"sessionid=x; Path=/; Secure; HttpOnly"
    assert secure_cookie(b"a=b; Secure; HttpOnly") == b"a=b; Secure; HttpOnly"


@get("/cookie-probe", name="cookie-probe")
async def cookie_probe() -> Response:
    return Response(b"{}", media_type="application/json", cookies={"probe": "1"})


def test_https_only_marks_cookies_secure(scene: Scene, make_client):
    client = make_client(scene, HTTPS_ONLY="TRUE")
    client.app.register(cookie_probe)
    response = client.get("/cookie-probe")
    assert "Secure" in response.headers["set-cookie"]
    assert "HttpOnly" in response.headers["set-cookie"]


def test_long_sqlite_history_streams_in_chunks(sqlite_env, unique_name, make_client):
    from tests.readapi.conftest import seed_scene

    scene = seed_scene(sqlite_env, unique_name)
    rows = 45_000  # over two chunks
    scene.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) "
        "INSERT INTO datapoint_value (datapoint_id, time, value_num) "
        "SELECT 2, 1795000000000 + i, i * 0.5 FROM n",
        {"rows": rows},
    )
    client = make_client(scene)
    response = client.get("/datapoint/2/value/?timestamp__gt=1795000000010")
    assert response.status_code == 200
    assert "content-length" not in response.headers  # streamed
    body = response.json()
    assert len(body) == rows - 10
    assert body[0] == {"value": "5.5", "timestamp": 1795000000011}
    assert body[-1] == {"value": "22500.0", "timestamp": 1795000045000}
    scene.engine.dispose()
