"""Login brute force: failed passwords are counted per (username, client address) and per
client address, and past the limit refused with 429 before the password hash is computed;
nobody can lock the owner out, who gets in from an address that has not failed.

In process (Litestar's TestClient, one client address) for the rules; then against a real
`python -m readapi` with two workers on both backends, clients on distinct loopback
addresses (127.0.0.x), for the owner, the attacker, the admin login and reverse proxies.
"""

from __future__ import annotations

import base64

import pytest

from readapi import auth
from readapi.db import open_database
from readapi.login_throttle import LoginThrottle
from tests.readapi.conftest import Scene, basic

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def kdf_calls(monkeypatch) -> list[str]:
    """The passwords verify_password was asked to check (each one an argon2 computation)."""
    calls: list[str] = []
    real = auth.verify_password

    def counting(stored, password):
        calls.append(password)
        return real(stored, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    return calls


def assert_throttled(response, window: int = 300) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/json"
    seconds = int(response.headers["retry-after"])
    assert 0 < seconds <= window
    unit = "second" if seconds == 1 else "seconds"
    assert response.json() == {
        "detail": f"Request was throttled. Expected available in {seconds} {unit}."
    }


def token_request(client, username: str, password: str):
    body = f'{{"username": "{username}", "password": "{password}"}}'
    return client.post("/auth/token/", content=body, headers=JSON)


def test_guesses_at_a_username_from_an_address_are_throttled(scene: Scene, make_client, kdf_calls):
    scene.user("victim", "view_datapoint")
    client = make_client(scene, auth={}, READAPI_LOGIN_MAX_FAILURES="3")
    # Basic auth and the token endpoint count together.
    assert client.get("/datapoint/", headers=basic("victim", "guess1")).status_code == 401
    assert token_request(client, "victim", "guess2").status_code == 400
    assert client.get("/datapoint/", headers=basic("victim", "guess3")).status_code == 401
    checked = len(kdf_calls)
    assert checked == 3  # each guess was hashed (the token endpoint's too)
    # From this address even the right password waits now, and no hash is computed for it.
    assert_throttled(client.get("/datapoint/", headers=basic("victim", "pass")))
    assert_throttled(token_request(client, "victim", "pass"))
    assert len(kdf_calls) == checked
    # Other users (same address, below its own limit) are not affected.
    assert client.get("/datapoint/", headers=basic("admin", "pass")).status_code == 200


def test_a_success_clears_the_count(scene: Scene, make_client):
    scene.user("typo", "view_datapoint")
    client = make_client(scene, auth={}, READAPI_LOGIN_MAX_FAILURES="3")
    for round_ in range(3):
        for attempt in range(2):
            wrong = basic("typo", f"wrong{round_}{attempt}")
            assert client.get("/datapoint/", headers=wrong).status_code == 401
        # A new header each round, so that the credential cache does not answer.
        right = token_request(client, "typo", "pass")
        assert right.status_code == 200, right.text
    # What is left is the address's count, which only expires.
    assert scene.execute("SELECT failures FROM login_failure") == [(6,)]


def test_verified_credentials_are_not_throttled(scene: Scene, make_client):
    client = make_client(scene, READAPI_LOGIN_MAX_FAILURES="3")  # admin's Basic header
    assert client.get("/datapoint/").status_code == 200
    for attempt in range(3):
        wrong = basic("admin", f"wrong{attempt}")
        assert client.get("/datapoint/", headers=wrong).status_code == 401
    assert_throttled(client.get("/datapoint/", headers=basic("admin", "wrong")))
    # Someone guessing admin's password does not lock admin's running client out.
    assert client.get("/datapoint/").status_code == 200
    # Nor tokens, which cannot be guessed.
    bearer = {"Authorization": f"Bearer {scene.admin_token}"}
    assert client.get("/datapoint/", headers=bearer).status_code == 200


def test_an_address_is_throttled_across_usernames(scene: Scene, make_client, kdf_calls):
    client = make_client(
        scene, auth={}, READAPI_LOGIN_MAX_FAILURES="3", READAPI_LOGIN_MAX_FAILURES_PER_IP="4"
    )
    for name in ("ann", "bob", "cid", "dan"):
        assert client.get("/datapoint/", headers=basic(name, "x")).status_code == 401
    checked = len(kdf_calls)
    assert checked == 4
    assert_throttled(client.get("/datapoint/", headers=basic("admin", "pass")))
    assert len(kdf_calls) == checked
    # A failure answers 401 with the usual body until then; malformed headers are not
    # password guesses and are not counted.
    garbled = {"Authorization": "Basic " + base64.b64encode(b"no colon").decode()}
    assert client.get("/datapoint/", headers={"Authorization": "Basic !!"}).status_code == 401
    assert_throttled(client.get("/datapoint/", headers=garbled))


def test_zero_turns_the_throttle_off(scene: Scene, make_client):
    client = make_client(
        scene, auth={}, READAPI_LOGIN_MAX_FAILURES="0", READAPI_LOGIN_MAX_FAILURES_PER_IP="0"
    )
    for attempt in range(4):
        assert client.get("/datapoint/", headers=basic("admin", f"x{attempt}")).status_code == 401
    assert client.get("/datapoint/", headers=basic("admin", "pass")).status_code == 200
    assert scene.execute("SELECT count(*) FROM login_failure")[0][0] == 0


def test_windows_expire_and_expired_rows_go(scene: Scene):
    now = [1_800_000_000.0]
    database = open_database(scene.settings)
    throttle = LoginThrottle(database, 2, 5, 60, clock=lambda: now[0])
    try:
        throttle.record_failure("eve", "10.0.0.1")
        now[0] += 30
        throttle.record_failure("eve", "10.0.0.1")
        assert throttle.check("eve", "10.0.0.1").retry_after == 30
        # Only this address's guesses at eve wait: eve from elsewhere, and other names from
        # here (below the address's own limit), are free.
        assert throttle.check("eve", "10.0.0.2").retry_after is None
        assert throttle.check("mallory", "10.0.0.1").retry_after is None
        now[0] += 29.5
        assert throttle.check("eve", "10.0.0.1").retry_after == 1
        now[0] += 1
        assert throttle.check("eve", "10.0.0.1").retry_after is None
        # A failure after the window starts a new count, and clears out the ended windows.
        throttle.record_failure("eve", "10.0.0.3")
        assert throttle.check("eve", "10.0.0.1").retry_after is None
        assert scene.execute("SELECT failures FROM login_failure ORDER BY failures") == [
            (1,),
            (1,),
        ]
        # No username or address is stored, only hashes.
        stored = str(scene.execute("SELECT * FROM login_failure"))
        assert "eve" not in stored and "10.0.0" not in stored
    finally:
        database.dispose()
