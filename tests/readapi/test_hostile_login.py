"""Login brute force: failed passwords are counted per (username, client address) and per
client address, and past the limit refused with 429 before the password hash is computed;
nobody can lock the owner out, who gets in from an address that has not failed.

In process (Litestar's TestClient, one client address) for the rules; then against a real
`python -m readapi` with two workers on both backends, clients on distinct loopback
addresses (127.0.0.x), for the owner, the attacker, the admin login and reverse proxies.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import NamedTuple

import httpx
import pytest
from sqlalchemy import update

from readapi import auth
from readapi.accounts import create_user
from readapi.db import open_database
from readapi.login_throttle import LoginThrottle
from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings
from schema.tables import auth_user
from tests.readapi.conftest import Scene, basic
from tests.support.readapi_process import ReadapiProcess, database_env

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


# --- A real readapi with two workers, clients on distinct loopback addresses -------------

OWNER = ("owner", "owner-pass")
PAIR_LIMIT = 3
ADDRESS_LIMIT = 6
MAX_REQUESTS = 200  # per loop; both workers answer long before (the deadline holds anyway)


class Served(NamedTuple):
    readapi: ReadapiProcess
    workers: set[int]


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def served(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Served]:
    pg_template = request.getfixturevalue("pg_template") if request.param == "postgres" else ""
    with database_env(request.param, pg_template, tmp_path_factory.mktemp("login")) as env:
        engine = create_sqlalchemy_engine(load_settings(env))
        with engine.begin() as connection:
            owner_id = create_user(connection, *OWNER, permissions=("view_datapoint",))
            connection.execute(
                update(auth_user).where(auth_user.c.id == owner_id).values(is_staff=True)
            )
        engine.dispose()
        readapi = ReadapiProcess(
            {
                **env,
                "READAPI_LOGIN_MAX_FAILURES": str(PAIR_LIMIT),
                "READAPI_LOGIN_MAX_FAILURES_PER_IP": str(ADDRESS_LIMIT),
                "FORWARDED_ALLOW_IPS": "127.0.0.1",
            }
        )
        try:
            readapi.start()
            workers = readapi.worker_pids()
            assert len(workers) == 2
            yield Served(readapi, workers)
        finally:
            readapi.stop()


def on_every_worker(served: Served, send, event_name: str) -> int:
    """`send()` (one request, on a fresh connection) until each worker has logged
    `event_name` for one; `send` checks each answer. Returns how many were sent."""
    seen: set[int] = set()
    sent = 0
    while seen != served.workers:
        assert sent < MAX_REQUESTS, f"only workers {seen} of {served.workers} answered"
        send()
        sent += 1
        seen.add(served.readapi.next_event(event_name)["worker"])
    return sent


def _headers(given: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in given.items()}


def token_status(served: Served, source: str, username: str, password: str, **headers) -> int:
    response = served.readapi.request(
        "POST",
        "/auth/token/",
        source=source,
        json={"username": username, "password": password},
        headers=_headers(headers),
    )
    return response.status_code


def basic_status(served: Served, source: str, username: str, password: str, **headers) -> int:
    response = served.readapi.request(
        "GET", "/datapoint/", source=source, auth=(username, password), headers=_headers(headers)
    )
    return response.status_code


def admin_login_status(served: Served, source: str, username: str, password: str) -> int:
    """The admin login form as a browser submits it (its page's token, our Origin)."""
    url = served.readapi.url
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=url, transport=transport, timeout=30) as client:
        page = client.get("/admin/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page[:500]
        response = client.post(
            "/admin/login",
            data={"username": username, "password": password, "csrf_token": token.group(1)},
            headers={"Origin": url},
        )
    return response.status_code


def test_the_owner_gets_in_from_a_clean_address_while_guessing_stays_throttled(served: Served):
    attacker, owner = "127.0.0.2", "127.0.0.3"
    served.readapi.skip_events()
    for guess in range(PAIR_LIMIT):
        assert basic_status(served, attacker, OWNER[0], f"guess{guess}") == 401
        served.readapi.next_event("login_failed")

    # The attacker's guesses now wait on every worker, renewed by nothing they send.
    def guess_again() -> None:
        assert basic_status(served, attacker, OWNER[0], "guess-more") == 429

    on_every_worker(served, guess_again, "login_throttled")
    # The right password from the attacker's address waits too, on REST and in the admin.
    assert token_status(served, attacker, *OWNER) == 429
    assert admin_login_status(served, attacker, *OWNER) == 429

    # The owner, from an address that has not failed, gets in on every worker: the token
    # endpoint checks the password every time (no cache), and the admin login form.
    def owner_logs_in() -> None:
        assert token_status(served, owner, *OWNER) == 200

    on_every_worker(served, owner_logs_in, "password_verified")
    assert admin_login_status(served, owner, *OWNER) == 302
    assert basic_status(served, owner, *OWNER) == 200
    # And the attacker is still throttled after the owner's successes.
    assert basic_status(served, attacker, OWNER[0], "guess-after") == 429


def test_a_spraying_address_waits_and_the_owner_elsewhere_does_not(served: Served):
    sprayer, owner = "127.0.0.4", "127.0.0.5"
    for number in range(ADDRESS_LIMIT):
        assert basic_status(served, sprayer, f"name{number}", "spray") == 401
    # Below each name's own limit, but the address has used up its guesses: even the
    # owner's right password from there waits (REST and admin), not from elsewhere.
    assert token_status(served, sprayer, *OWNER) == 429
    assert admin_login_status(served, sprayer, *OWNER) == 429
    assert token_status(served, owner, *OWNER) == 200


def test_behind_a_trusted_proxy_each_client_counts_apart(served: Served):
    proxy = "127.0.0.1"  # FORWARDED_ALLOW_IPS names it
    for guess in range(PAIR_LIMIT):
        status = basic_status(served, proxy, OWNER[0], f"p{guess}", x_forwarded_for="10.6.6.6")
        assert status == 401
    assert token_status(served, proxy, *OWNER, x_forwarded_for="10.6.6.6") == 429
    # Another client through the same proxy is not the attacker.
    assert token_status(served, proxy, *OWNER, x_forwarded_for="10.7.7.7") == 200
    failed = [e for e in served.readapi.named("login_failed") if e["client"] == "10.6.6.6"]
    assert len(failed) == PAIR_LIMIT
    warned = served.readapi.named("proxy_headers_ignored")
    assert not [e for e in warned if e["peer"] == proxy]


def test_proxy_headers_from_an_untrusted_peer_are_warned_about_once_per_worker(served: Served):
    peer = "127.0.0.6"  # not in FORWARDED_ALLOW_IPS
    served.readapi.skip_events()

    def proxied() -> None:
        status = basic_status(served, peer, *OWNER, x_forwarded_for="10.8.8.8")
        assert status == 200

    warned: list[dict] = []
    sent = 0
    while {e["worker"] for e in warned} != served.workers:
        assert sent < MAX_REQUESTS
        proxied()
        sent += 1
        served.readapi.next_event("authenticated")
        warned = served.readapi.named("proxy_headers_ignored")
    for _ in range(4):
        proxied()
        served.readapi.next_event("authenticated")  # logged after any warning of its request
    warned = served.readapi.named("proxy_headers_ignored")
    assert len(warned) == 2, warned
    assert {e["peer"] for e in warned} == {peer}
    assert {e["forwarded_allow_ips"] for e in warned} == {"127.0.0.1"}
    assert all(e["level"] == "warning" for e in warned)
    # uvicorn kept the peer's own address: the throttle counts the peer, not the header.
    assert basic_status(served, peer, "nobody-here", "x", x_forwarded_for="10.8.8.8") == 401
    assert served.readapi.next_event("login_failed")["client"] == peer
