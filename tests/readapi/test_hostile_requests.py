"""Issue 12, findings 8 and 9: what every JSON route does with a body it must not read.

- A body not declared `application/json` is refused with DRF's 415 before it is parsed (a
  page elsewhere can send text/plain, a form or a typeless Blob as a "simple request", with
  the Basic credentials a browser has cached).
- Nesting deeper than 64 levels, up to 100,000, is a 400 with a JSON body (it was a 500),
  and so is a lone surrogate, in the body or in the JSON text of a value.
- Where no one has logged in (POST /auth/token/) at most 64 KiB of body is read.
Each case also checks that nothing was stored, and the routes list is checked against the
application's own, so a new JSON route cannot be left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.handlers import HTTPRouteHandler

from readapi.body import MAX_DEPTH, nesting_depth, too_deep
from tests.readapi.conftest import ADMIN, Scene, seed_scene

TS = 1795840310439
JSON = "application/json"
Body = Callable[[Scene], object]

# (method, path, the path template as the app names it, a body the route accepts)
JSON_ROUTES: list[tuple[str, str, str, Body]] = [
    (
        "POST",
        "/datapoint/",
        "/datapoint",
        lambda s: [
            {"connector": {"name": s.connector_name}, "key_in_connector": "k9", "type": "sensor"}
        ],
    ),
    (
        "PUT",
        "/datapoint/",
        "/datapoint",
        lambda s: [
            {
                "connector": {"name": s.connector_name},
                "key_in_connector": "bench_s_0000",
                "type": "sensor",
                "unit": "K",
            }
        ],
    ),
    (
        "POST",
        "/datapoint/101/value/",
        "/datapoint/{dp_id:int}/value",
        lambda s: {"value": "1", "timestamp": TS},
    ),
    (
        "PUT",
        "/datapoint/2/value/",
        "/datapoint/{dp_id:int}/value",
        lambda s: [{"value": "1.5", "timestamp": TS}],
    ),
    (
        "POST",
        "/datapoint/101/setpoint/",
        "/datapoint/{dp_id:int}/setpoint",
        lambda s: {
            "setpoint": [{"from_timestamp": None, "to_timestamp": None, "preferred_value": "1"}],
            "timestamp": TS,
        },
    ),
    (
        "PUT",
        "/datapoint/101/setpoint/",
        "/datapoint/{dp_id:int}/setpoint",
        lambda s: [
            {
                "setpoint": [
                    {"from_timestamp": None, "to_timestamp": None, "preferred_value": "1"}
                ],
                "timestamp": TS,
            }
        ],
    ),
    (
        "POST",
        "/datapoint/101/schedule/",
        "/datapoint/{dp_id:int}/schedule",
        lambda s: {
            "schedule": [{"from_timestamp": None, "to_timestamp": None, "value": "2"}],
            "timestamp": TS,
        },
    ),
    (
        "PUT",
        "/datapoint/101/schedule/",
        "/datapoint/{dp_id:int}/schedule",
        lambda s: [
            {
                "schedule": [{"from_timestamp": None, "to_timestamp": None, "value": "2"}],
                "timestamp": TS,
            }
        ],
    ),
    ("POST", "/connector/", "/connector", lambda s: {"name": f"{s.connector_name}-new"}),
    ("POST", "/auth/token/", "/auth/token", lambda s: {"username": ADMIN[0], "password": ADMIN[1]}),
]

NOT_JSON = [
    None,  # no Content-Type at all: what fetch() sends for a Blob without a type
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/json",
    "application/xml",
]

TABLES = (
    "connector",
    "datapoint",
    "datapoint_value",
    "datapoint_setpoint",
    "datapoint_schedule",
    "api_token",
)


def state(scene: Scene) -> dict:
    """What any of the routes could change."""
    found: dict = {t: scene.execute(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
    found["units"] = scene.execute("SELECT id, unit FROM datapoint ORDER BY id")
    return found


@pytest.fixture
def sqlite_scene(sqlite_env: dict[str, str], unique_name: str) -> Iterator[Scene]:
    built = seed_scene(sqlite_env, unique_name)
    yield built
    built.engine.dispose()


def send(client, method: str, path: str, body: bytes, content_type: str | None):
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return client.request(method, path, content=body, headers=headers)


def assert_json_answer(response, status: int, context) -> dict:
    assert response.status_code == status, (context, response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/json", context
    return response.json()


def test_the_list_holds_every_json_route(sqlite_scene: Scene, make_client):
    client = make_client(sqlite_scene)
    in_app = {
        (method, route.path)
        for route in client.app.routes
        for handler in getattr(route, "route_handlers", [])
        if isinstance(handler, HTTPRouteHandler)
        for method in handler.http_methods
        if method in ("POST", "PUT", "PATCH")
    }
    assert in_app == {(method, template) for method, _, template, _ in JSON_ROUTES}


def test_a_body_not_declared_json_is_refused_with_415(sqlite_scene: Scene, make_client):
    client = make_client(sqlite_scene)
    before = state(sqlite_scene)
    for method, path, _, body in JSON_ROUTES:
        raw = json.dumps(body(sqlite_scene)).encode()
        for content_type in NOT_JSON:
            response = send(client, method, path, raw, content_type)
            answer = assert_json_answer(response, 415, (method, path, content_type))
            assert answer == {
                "detail": f'Unsupported media type "{content_type or ""}" in request.'
            }
    assert state(sqlite_scene) == before
    # The same bodies, declared JSON (with a charset, as some clients send), are accepted.
    for method, path, _, body in JSON_ROUTES:
        raw = json.dumps(body(sqlite_scene)).encode()
        response = send(client, method, path, raw, "application/json; charset=utf-8")
        assert 200 <= response.status_code < 300, (method, path, response.text[:300])
    assert state(sqlite_scene) != before


def test_an_empty_body_is_no_document_whatever_its_type(sqlite_scene: Scene, make_client):
    """DRF reads an empty body as {} without looking at its type: the route's own answer."""
    client = make_client(sqlite_scene)
    response = send(client, "POST", "/connector/", b"", "text/plain")
    assert assert_json_answer(response, 400, "empty") == {"name": ["This field is required."]}


def deep(levels: int, opener: str = "[") -> str:
    closer = "]" if opener == "[" else "}"
    inner = "1" if opener == "[" else '{"a": 1}'
    if opener == "{":
        opener, levels = '{"a": ', levels - 1
    return opener * levels + inner + closer * levels


def too_deep_bodies(good: object) -> Iterator[tuple[str, bytes]]:
    for levels in (65, 1000, 30_000, 100_000):
        yield f"array {levels}", deep(levels).encode()
        yield f"object {levels}", deep(levels, "{").encode()
        # Deep inside a body that is otherwise what the route expects.
        document = json.dumps({"good": good, "extra": "__DEEP__"})
        yield f"inside {levels}", document.replace('"__DEEP__"', deep(levels)).encode()
    yield "strings do not count", b'["[[[[", ' + deep(200).encode() + b"]"


LONE_SURROGATES = [
    ("escaped high", b'{"name": "a\\ud800b", "username": "\\ud800"}'),
    ("escaped low in a key", b'{"\\udc00": 1}'),
    ("escaped low, NaN beside it", b'[NaN, "\\udfff"]'),
    ("encoded as bytes (CESU-8)", b'{"name": "\xed\xa0\x80"}'),
]


def test_deep_nesting_and_lone_surrogates_are_400_on_every_route(scene: Scene, make_client):
    client = make_client(scene)
    before = state(scene)
    for method, path, _, body in JSON_ROUTES:
        for label, raw in too_deep_bodies(body(scene)):
            response = send(client, method, path, raw, JSON)
            if path == "/auth/token/" and len(raw) > 65_536:
                assert_json_answer(response, 413, (method, path, label))  # not even read
                continue
            answer = assert_json_answer(response, 400, (method, path, label))
            assert answer == {"detail": "JSON parse error - nested deeper than 64 levels"}
        # Exactly 64 levels is parsed: the route says what is wrong with the document instead.
        response = send(client, method, path, deep(64).encode(), JSON)
        assert_json_answer(response, 400, (method, path, 64))
        assert "nested deeper" not in response.text
        for label, raw in LONE_SURROGATES:
            response = send(client, method, path, raw, JSON)
            answer = assert_json_answer(response, 400, (method, path, label))
            assert answer["detail"].startswith("JSON parse error - "), (path, label, answer)
            assert "surrogate" in answer["detail"] or "utf-8" in answer["detail"], answer
    assert state(scene) == before
    # The same parts inside the JSON text of a value, which readers decode again.
    for text in ('"\\ud800"', '{"\\udbff": 1}', deep(65), deep(100_000)):
        message = f"Value ({text}) cannot be parsed as JSON."
        put = client.put(
            "/datapoint/2/value/",
            content=json.dumps([{"value": text, "timestamp": TS}]),
            headers={"Content-Type": JSON},
        )
        assert assert_json_answer(put, 400, text[:20]) == [{"value": [message]}]
        posted = client.post(
            "/datapoint/101/value/",
            content=json.dumps({"value": text, "timestamp": TS}),
            headers={"Content-Type": JSON},
        )
        assert assert_json_answer(posted, 400, text[:20]) == {"value": [message]}
    assert state(scene) == before
    # A value nested 64 deep is a value like any other.
    fits = client.put(
        "/datapoint/2/value/",
        content=json.dumps([{"value": deep(64), "timestamp": TS}]),
        headers={"Content-Type": JSON},
    )
    assert fits.status_code == 200, fits.text
    assert client.get(f"/datapoint/2/value/{TS}/").json()["value"] == deep(64)


def test_the_token_route_reads_at_most_64_kib_before_login(sqlite_scene: Scene, make_client):
    client = make_client(sqlite_scene, auth={})
    too_large = {"detail": "Request body too large: the limit is 65536 bytes."}

    def login_body(password_length: int) -> bytes:
        return json.dumps({"username": "admin", "password": "x" * password_length}).encode()

    fits = send(client, "POST", "/auth/token/", login_body(65_000), JSON)
    assert assert_json_answer(fits, 400, "fits") == {
        "non_field_errors": ["Unable to log in with provided credentials."]
    }
    announced = send(client, "POST", "/auth/token/", login_body(66_000), JSON)
    assert assert_json_answer(announced, 413, "announced") == too_large
    body = login_body(200_000)
    streamed = client.post(
        "/auth/token/",
        content=iter([body[i : i + 16_384] for i in range(0, len(body), 16_384)]),
        headers={"Content-Type": JSON},
    )
    assert assert_json_answer(streamed, 413, "streamed") == too_large
    # Logged in, a route reads up to READAPI_MAX_BODY_BYTES as before.
    admin = make_client(sqlite_scene)
    batch = [{"value": "1.5", "timestamp": TS + i} for i in range(3000)]
    raw = json.dumps(batch).encode()
    assert len(raw) > 2 * 65_536
    put = send(admin, "PUT", "/datapoint/2/value/", raw, JSON)
    assert put.status_code == 200 and put.json() == {"msgs_created": 3000, "msgs_updated": 0}


def reference_depth(document: object) -> int:
    if isinstance(document, dict):
        return 1 + max(map(reference_depth, document.values()), default=0)
    if isinstance(document, list):
        return 1 + max(map(reference_depth, document), default=0)
    return 0


# Strings full of what could fool a scan: brackets, quotes, backslashes, escapes.
TRICKY_TEXT = st.text(alphabet=st.sampled_from('[]{}"\\/u:, a\n\u00e9\u2028'), max_size=12)
DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY_TEXT, inner, max_size=4),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(document=DOCUMENTS, ascii_only=st.booleans(), padding=st.integers(0, 70))
def test_the_depth_scan_agrees_with_the_document(document, ascii_only, padding):
    """nesting_depth reads a decoded body's depth from its bytes; never fooled by strings."""
    # Wrapped in `padding` arrays, so the scan (not its shortcut) decides near the limit.
    wrapped = document
    for _ in range(padding):
        wrapped = [wrapped]
    raw = json.dumps(wrapped, ensure_ascii=ascii_only).encode()
    assert nesting_depth(raw) == reference_depth(wrapped)
    assert too_deep(raw) == (reference_depth(wrapped) > MAX_DEPTH)
