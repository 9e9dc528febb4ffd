"""Hostile clients on real sockets against a real `python -m readapi` (two uvicorn workers).

Slow clients (slowloris: heads and bodies trickled a few bytes at a time) must not delay
anyone else, and are cut off by READAPI_HEADER_TIMEOUT_SECONDS / READAPI_BODY_TIMEOUT_SECONDS;
oversized bodies are refused with 413 whether announced or streamed chunked; malformed HTTP
gets a JSON 400. The timeouts are shortened to 2 s here so that the test stays fast.
Password guessing is throttled across both workers (the failure counts are in the database).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import admin_connect, base_env, copy_template
from tests.readapi.conftest import ADMIN, seed_scene
from tests.readapi.test_process import ROOT
from tests.support.broker import free_port, wait_for_port

TIMEOUT_S = 2.0
MAX_BODY = 65_536
SLOW_CLIENTS = 50
LOGIN_FAILURES = 3
AUTH = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()


class Served:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture(scope="module")
def served(pg_template: str) -> Iterator[Served]:
    name = f"bemcom_test_{secrets.token_hex(6)}"
    with admin_connect() as conn:
        copy_template(conn, name, pg_template)
    env = base_env(
        DJANGOAPIDB_HOST=os.environ.get("BEMCOM_TEST_PG_HOST", "127.0.0.1"),
        DJANGOAPIDB_PORT=os.environ.get("BEMCOM_TEST_PG_PORT", "5432"),
        DJANGOAPIDB_USER=os.environ.get("BEMCOM_TEST_PG_USER", "postgres"),
        DJANGOAPIDB_DBNAME=name,
    )
    scene = seed_scene(env, f"test-{secrets.token_hex(5)}")
    scene.user("victim", "view_datapoint")
    scene.engine.dispose()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "readapi"],
        cwd=ROOT,
        env={
            **os.environ,
            **env,
            "BEMCOM_HTTP_PORT": str(port),
            "N_WORKER_PROCESSES": "2",
            "LOGLEVEL": "WARNING",
            "READAPI_HEADER_TIMEOUT_SECONDS": str(int(TIMEOUT_S)),
            "READAPI_BODY_TIMEOUT_SECONDS": str(int(TIMEOUT_S)),
            "READAPI_MAX_BODY_BYTES": str(MAX_BODY),
            "READAPI_LOGIN_MAX_FAILURES": str(LOGIN_FAILURES),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        served = Served(port)
        with httpx.Client(base_url=served.url, timeout=10) as client:
            deadline = time.monotonic() + 20
            while client.get("/health/live").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout` passes)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received


def status_and_json(raw: bytes) -> tuple[int, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), raw[:300]
    return int(head.split(b" ", 2)[1]), json.loads(body)


def request_pair_latency(client: httpx.Client) -> float:
    before = time.monotonic()
    assert client.get("/datapoint/").status_code == 200
    assert client.get("/health/live").status_code == 200
    return (time.monotonic() - before) / 2


def test_slowloris_does_not_delay_other_clients_and_is_cut_off(served: Served):
    with httpx.Client(base_url=served.url, auth=ADMIN, timeout=10) as client:
        baseline = sorted(request_pair_latency(client) for _ in range(10))
    slow = []
    for _ in range(SLOW_CLIENTS):
        sock = served.connect()
        sock.sendall(b"GET /datapoint/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        slow.append(sock)
    idle = served.connect()  # never sends a byte
    started = time.monotonic()
    stop = threading.Event()

    def trickle() -> None:
        # One header line per client every 0.2 s: each keeps "sending", never finishing.
        while not stop.is_set():
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"X-Slow: 1\r\n")
            stop.wait(0.2)

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    latencies = []
    try:
        with httpx.Client(base_url=served.url, auth=ADMIN, timeout=10) as client:
            while time.monotonic() - started < TIMEOUT_S * 0.8:
                latencies.append(request_pair_latency(client))
        answers = [read_until_closed(sock, TIMEOUT_S * 2) for sock in slow]
        closed_after = time.monotonic() - started
    finally:
        stop.set()
        trickler.join()
        for sock in slow:
            sock.close()
    latencies.sort()
    print(
        f"\nalone: median {baseline[5] * 1000:.1f} ms; "
        f"{SLOW_CLIENTS} slow clients: {len(latencies)} requests, median "
        f"{latencies[len(latencies) // 2] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms; "
        f"slow clients cut off after {closed_after:.1f} s"
    )
    # Two workers answer in a few ms (they took ~45 ms while Nagle's algorithm was on).
    assert baseline[5] < 0.02
    assert len(latencies) >= 10
    assert latencies[len(latencies) // 2] < 0.05 and latencies[-1] < 0.5
    # Each slow client got a JSON 408 and a closed connection, though it never stopped sending.
    for raw in answers:
        status, body = status_and_json(raw)
        assert status == 408
        assert body == {"detail": "The request head did not arrive within 2 seconds."}
    assert closed_after < TIMEOUT_S + 2
    # A connection that sends nothing is closed silently.
    assert read_until_closed(idle, TIMEOUT_S * 2) == b""
    idle.close()


def slow_body_request(served: Served, method: str, path: str, auth: bool) -> tuple[bytes, float]:
    sock = served.connect()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: 1000\r\n{'Authorization: ' + AUTH + chr(13) + chr(10) if auth else ''}"
        "\r\n"
    )
    sock.sendall(head.encode())
    started = time.monotonic()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.2):
            try:
                sock.send(b"[  ")
            except OSError:
                return

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        raw = read_until_closed(sock, TIMEOUT_S * 3)
    finally:
        stop.set()
        trickler.join()
        sock.close()
    return raw, time.monotonic() - started


@pytest.mark.parametrize(
    ("method", "path", "auth"),
    [("PUT", "/datapoint/2/value/", True), ("POST", "/auth/token/", False)],
)
def test_a_slow_body_is_cut_off_with_408(served: Served, method, path, auth):
    raw, elapsed = slow_body_request(served, method, path, auth)
    status, body = status_and_json(raw)
    assert status == 408
    assert body == {"detail": "The request body did not arrive within 2 seconds."}
    assert b"connection: close" in raw.lower()
    assert TIMEOUT_S - 0.1 < elapsed < TIMEOUT_S + 1.5


def test_a_slow_body_to_a_refused_request_is_not_waited_for(served: Served):
    """Without credentials the answer (401) comes before the body; the rest is not awaited."""
    raw, elapsed = slow_body_request(served, "PUT", "/datapoint/2/value/", auth=False)
    assert status_and_json(raw)[0] == 401
    assert elapsed < TIMEOUT_S + 1.5


def test_oversized_bodies_on_the_wire(served: Served):
    too_large = {"detail": f"Request body too large: the limit is {MAX_BODY} bytes."}
    # Announced: refused before a byte of the body is read.
    sock = served.connect()
    sock.sendall(
        b"PUT /datapoint/2/value/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
        b"\r\nContent-Length: 1000000000\r\nAuthorization: " + AUTH.encode() + b"\r\n\r\n"
    )
    status, body = status_and_json(read_until_closed(sock, 5))
    sock.close()
    assert (status, body) == (413, too_large)
    # Chunked, without a length: refused once the bytes received pass the limit.
    sock = served.connect()
    sock.sendall(
        b"PUT /datapoint/2/value/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
        b"\r\nTransfer-Encoding: chunked\r\nAuthorization: " + AUTH.encode() + b"\r\n\r\n"
    )
    chunk = b"[" + b" " * 16_383
    try:
        for _ in range(8):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        pass  # the server may close before all of it is sent
    status, body = status_and_json(read_until_closed(sock, 5))
    sock.close()
    assert (status, body) == (413, too_large)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 70_000,
    ],
    ids=["no-request-line", "bad-content-length", "head-too-large"],
)
def test_malformed_http_is_answered_in_json(served: Served, request_bytes: bytes):
    sock = served.connect()
    with contextlib.suppress(OSError):
        sock.sendall(request_bytes)
    raw = read_until_closed(sock, 5)
    sock.close()
    status, body = status_and_json(raw)
    assert status == 400
    assert body == {"detail": "Invalid HTTP request received."}


def test_login_throttle_holds_across_worker_processes(served: Served):
    def attempt(password: str) -> httpx.Response:
        # A new connection each time: either worker may take it.
        with httpx.Client(base_url=served.url, timeout=10) as client:
            return client.get("/datapoint/", auth=("victim", password))

    for guess in range(LOGIN_FAILURES):
        assert attempt(f"guess{guess}").status_code == 401
    for _ in range(6):
        refused = attempt("pass")
        assert refused.status_code == 429
        assert refused.json()["detail"].startswith("Request was throttled.")
        assert 0 < int(refused.headers["retry-after"]) <= 300


def _hangups_counted(served: Served) -> dict[str, float]:
    text = httpx.get(f"{served.url}/metrics/", headers={"Authorization": AUTH}).text
    counted: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("readapi_http_requests_total") and 'route="value-upsert"' in line:
            status = line.split('status="')[1].split('"')[0]
            counted[status] = counted.get(status, 0.0) + float(line.rsplit(" ", 1)[1])
    return counted


def test_a_client_that_hangs_up_mid_body_is_counted_499_not_500(served: Served):
    """Litestar answers a body cut short with a 500 nobody receives; /metrics/ must not
    report it as a server fault."""
    before = _hangups_counted(served)
    sock = served.connect()
    sock.sendall(
        (
            "PUT /datapoint/2/value/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: 1000\r\nAuthorization: {AUTH}"
            "\r\n\r\n[{"
        ).encode()
    )
    time.sleep(0.3)
    sock.close()
    deadline = time.monotonic() + 10
    while (after := _hangups_counted(served)).get("499", 0) <= before.get("499", 0):
        assert time.monotonic() < deadline, after
        time.sleep(0.2)
    assert after.get("500", 0) == before.get("500", 0)
