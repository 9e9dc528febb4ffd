"""Oversized request bodies: READAPI_MAX_BODY_BYTES answers 413 in JSON, announced or not.

Real sockets against a real process (chunked bodies, a Content-Length that is never sent) are
in test_hostile_process.py; here the in-process app.
"""

from __future__ import annotations

import inspect
import json

import pytest

from backup.restore_job import run_restore
from schema.settings import SettingsError, load_settings
from tests.readapi.conftest import Scene

LIMIT = 4096
JSON = {"Content-Type": "application/json"}
TOO_LARGE = {"detail": f"Request body too large: the limit is {LIMIT} bytes."}


def values(count: int, start: int = 1795840210439) -> bytes:
    return json.dumps([{"value": "1.5", "timestamp": start + i} for i in range(count)]).encode()


def test_an_oversized_body_is_refused_with_413_json(scene: Scene, make_client):
    client = make_client(scene, READAPI_MAX_BODY_BYTES=str(LIMIT))
    fits = values(80)
    assert len(fits) < LIMIT
    assert client.put("/datapoint/2/value/", content=fits, headers=JSON).status_code == 200
    before = scene.execute("SELECT count(*) FROM datapoint_value")[0][0]
    for path, method in [
        ("/datapoint/2/value/", "PUT"),
        ("/datapoint/", "POST"),
        ("/datapoint/", "PUT"),
        ("/datapoint/101/value/", "POST"),
        ("/connector/", "POST"),
        ("/auth/token/", "POST"),
    ]:
        response = client.request(method, path, content=values(200), headers=JSON)
        assert response.status_code == 413, (method, path, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json() == TOO_LARGE
    # Streamed without a Content-Length (chunked), the count of bytes received decides.
    streamed = client.put(
        "/datapoint/2/value/", content=iter([values(60), values(60)]), headers=JSON
    )
    assert streamed.status_code == 413 and streamed.json() == TOO_LARGE
    assert scene.execute("SELECT count(*) FROM datapoint_value")[0][0] == before


def test_the_default_limit_leaves_room_for_a_restore_batch():
    default = load_settings({}).readapi_max_body_bytes
    assert default == 32 * 1024 * 1024
    batch = inspect.signature(run_restore).parameters["batch_size"].default
    # A value message of the restore is ~50 bytes; a large schedule a few hundred.
    assert batch * 1024 < default


def test_a_bad_limit_names_its_variable():
    for raw in ("lots", "100"):
        with pytest.raises(SettingsError) as error:
            load_settings({"READAPI_MAX_BODY_BYTES": raw})
        assert error.value.variable == "READAPI_MAX_BODY_BYTES"


def test_the_body_deadline_ends_with_the_body():
    """After the body, the application waits for a disconnect (while a long response streams)
    as long as it takes; only a body still arriving is cut off."""
    import anyio

    from readapi.body_deadline import BodyDeadlineMiddleware
    from readapi.errors import ApiError

    async def scenario(messages: list[dict]) -> list:
        received = []

        async def app(scope, receive, send):
            while True:
                message = await receive()
                received.append(message)
                if message["type"] == "http.disconnect":
                    return

        async def slow_receive():
            await anyio.sleep(0.15)
            return messages.pop(0)

        middleware = BodyDeadlineMiddleware(app, seconds=0.25)
        try:
            await middleware({"type": "http", "path": "/"}, slow_receive, None)
        except ApiError as error:
            received.append(error.status_code)
        return received

    complete = [
        {"type": "http.request", "body": b"{}", "more_body": False},
        {"type": "http.disconnect"},
    ]
    # The disconnect comes 0.3 s after the head: past the deadline, but the body was complete.
    assert [m["type"] for m in anyio.run(scenario, list(complete))] == [
        "http.request",
        "http.disconnect",
    ]
    trickled = [{"type": "http.request", "body": b"[", "more_body": True}] * 3
    assert anyio.run(scenario, trickled)[-1] == 408
