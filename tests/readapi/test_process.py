"""The real thing: `python -m readapi` as a subprocess (uvicorn, workers, CLI, superuser),
and a million-row history streamed with flat memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.broker import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def workers_of(pid: int) -> list[int]:
    """uvicorn's worker processes (spawned), not multiprocessing's resource tracker."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = []
    for child in path.read_text().split():
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in command:
            found.append(int(child))
    return found


@pytest.fixture
def served(pg_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str], subprocess.Popen]]:
    port = free_port()
    env = {
        **os.environ,
        **pg_env,
        "BEMCOM_HTTP_PORT": str(port),
        "DJANGO_SUPERUSER_USERNAME": "root",
        "DJANGO_SUPERUSER_PASSWORD": "s3cret",
        "DJANGO_SUPERUSER_EMAIL": "root@example.com",
        "N_WORKER_PROCESSES": "2",
        "LOGLEVEL": "INFO",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "readapi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}", env, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-m", "readapi", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_served_process_cli_and_streaming(served):
    url, env, process = served
    # DJANGO_SUPERUSER_* created the admin account at start.
    with httpx.Client(base_url=url, auth=("root", "s3cret"), timeout=60) as client:
        deadline = time.monotonic() + 20
        while client.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.2)
        assert client.get("/datapoint/").json() == []
        assert client.get("/datapoint/abc/value/").json() == {"detail": "Not found."}
        created = client.post(
            "/datapoint/",
            json=[
                {"connector": {"name": "proc-conn"}, "key_in_connector": "big", "type": "sensor"}
            ],
        )
        assert created.status_code == 201
        dp_id = created.json()[0]["id"]
    # The CLI makes users and tokens; the token works against the server.
    cli(env, "createuser", "reader", "--permission", "view_datapointvalue", stdin="pw\n")
    token = cli(env, "createtoken", "reader")
    assert len(token) == 40
    # A million rows, written straight into the database.
    import psycopg

    with psycopg.connect(
        host=env["DJANGOAPIDB_HOST"], user=env["DJANGOAPIDB_USER"], dbname=env["DJANGOAPIDB_DBNAME"]
    ) as connection:
        connection.execute(
            "INSERT INTO datapoint_value (datapoint_id, time, value_num) "
            "SELECT %s, to_timestamp(1795000000 + n / 1000.0), n * 0.5 "
            "FROM generate_series(1, 1000000) AS n",
            (dp_id,),
        )
    workers = workers_of(process.pid)
    assert len(workers) == 2
    before = {pid: peak_rss_mb(pid) for pid in workers}
    received = 0
    tail = b""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=120) as client:
        with client.stream("GET", f"/datapoint/{dp_id}/value/", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers.get("transfer-encoding") == "chunked"
            for chunk in response.iter_bytes():
                if received == 0:
                    assert chunk.startswith(b'[{"value":"0.5","timestamp":1795000000001}')
                received += len(chunk)
                tail = (tail + chunk)[-80:]
        assert tail.endswith(b'{"value":"500000.0","timestamp":1795001000000}]')
        assert received > 40_000_000
        assert client.get("/datapoint/", headers=headers).status_code == 403
        # Metrics are collected from every worker's files (multiprocess mode).
        for _ in range(6):
            client.get("/health/live")
        metrics = client.get("/metrics/", auth=("root", "s3cret"))
        assert metrics.status_code == 200
        assert 'route="health-live",status="200"} 6.0' in metrics.text
    growth = max(peak_rss_mb(pid) - before[pid] for pid in workers)
    # Built in memory, 1e6 rows would cost hundreds of MB; streamed, a few chunks.
    assert growth < 40, f"a worker grew by {growth:.0f} MB"
