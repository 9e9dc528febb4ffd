"""The real thing: `python -m readapi` as a subprocess (uvicorn, workers, CLI, superuser),
a million-row history streamed with flat memory, and both workers serving requests on fresh
connections, their metrics adding up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

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


def served_by(metrics_dir: Path, pid: int, labels: dict[str, str]) -> float:
    """A worker's own count of requests, from its own file of the multiprocess metrics
    (prometheus_client writes counter_<pid>.db per process; /metrics/ adds them up)."""
    with tempfile.TemporaryDirectory() as alone:
        source = metrics_dir / f"counter_{pid}.db"
        if not source.exists():
            return 0.0
        shutil.copy(source, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=alone)
        return registry.get_sample_value("readapi_http_requests_total", labels) or 0.0


@pytest.fixture
def served(
    pg_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[str, dict[str, str], subprocess.Popen]]:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        **pg_env,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
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
    growth = max(peak_rss_mb(pid) - before[pid] for pid in workers)
    # Built in memory, 1e6 rows would cost hundreds of MB; streamed, a few chunks.
    assert growth < 40, f"a worker grew by {growth:.0f} MB"
    # The same server (starting one costs seconds): both workers answer, metrics add up.
    both_workers_serve_and_the_metrics_add_up(served)


def both_workers_serve_and_the_metrics_add_up(served) -> None:
    """Every request on a fresh connection, several at once, until each of the two workers
    has answered some (each worker's own metrics file says which did); then /metrics/ must
    report exactly the sum of the workers' counts, and that is exactly what was sent."""
    url, env, process = served
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    labels = {"method": "GET", "route": "health-live", "status": "200"}
    deadline = time.monotonic() + 30
    while len(workers := workers_of(process.pid)) < 2:  # the port opens before they start
        assert time.monotonic() < deadline, f"workers: {workers}"
        time.sleep(0.1)
    assert len(workers) == 2

    def fresh_request(_: int) -> int:
        # A client per request: a new TCP connection, which either worker may accept.
        with httpx.Client(base_url=url, timeout=30) as client:
            return client.get("/health/live").status_code

    sent = 0
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(max_workers=4) as pool:
        while True:
            assert list(pool.map(fresh_request, range(20))) == [200] * 20
            sent += 20
            counts = {pid: served_by(metrics_dir, pid, labels) for pid in workers}
            if all(counts.values()) or time.monotonic() > deadline:
                break
    print(f"requests per worker: {counts}")
    assert all(counts.values()), f"one worker served all {sent} requests: {counts}"
    assert sum(counts.values()) == sent, counts
    with httpx.Client(base_url=url, auth=("root", "s3cret"), timeout=30) as client:
        metrics = client.get("/metrics/")
    assert metrics.status_code == 200
    line = f'readapi_http_requests_total{{method="GET",route="health-live",status="200"}} {sent}.0'
    assert line in metrics.text.splitlines(), [
        x for x in metrics.text.splitlines() if "health-live" in x
    ]
