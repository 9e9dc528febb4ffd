"""readapi benchmark: one uvicorn worker on PostgreSQL, Bearer auth, loopback only.

Scene: 100 active datapoints with a last value each; one holds 10,000 history rows.
Figures (p50 over a bounded number of requests, measured at the client):
- history_10k_p50_ms: GET of the 10,000-row history;
- last_value_100_p50_ms: GET /datapoint/last_value/ answering all 100;
- basic_auth_overhead_ms: p50 of a small request with Basic minus the same with Bearer,
  once the Basic credential was verified (and cached);
- readapi_peak_rss_mb: the worker's VmHWM after all of it.
Every answer must hold the rows seeded (10,000, 100, 1); a short one fails the run.

`python -m tests.bench.readapi_bench` runs it alone and prints the dict as JSON.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.support.broker import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
PG_HOST = os.environ.get("BEMCOM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BEMCOM_TEST_PG_PORT", "5432")
PG_USER = os.environ.get("BEMCOM_TEST_PG_USER", "postgres")
DATAPOINTS = 100
HISTORY_ROWS = 10_000
WARMUP = 20
REQUESTS = int(os.environ.get("BENCH_READAPI_REQUESTS", "200"))


def _admin() -> psycopg.Connection:
    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    )


def _env(database: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGOAPIDB_HOST": PG_HOST,
        "DJANGOAPIDB_PORT": PG_PORT,
        "DJANGOAPIDB_USER": PG_USER,
        "DJANGOAPIDB_DBNAME": database,
        "MQTT_BROKER_HOST": "127.0.0.1",
        "MQTT_BROKER_PORT": os.environ.get("BENCH_MQTT_PORT", "1883"),
        "ACTIVATE_HISTORY_EXTENSION": "TRUE",
        "ACTIVATE_CONTROL_EXTENSION": "TRUE",
        "N_WORKER_PROCESSES": "1",
        "BEMCOM_HTTP_PORT": str(port),
        "LOGLEVEL": "WARNING",
        "BEMCOM_LOG_JSON": "TRUE",
        "DJANGO_SUPERUSER_USERNAME": "bench",
        "DJANGO_SUPERUSER_PASSWORD": "bench-password",
        "DJANGO_SUPERUSER_EMAIL": "bench@example.com",
    }


def _seed(env: dict[str, str]) -> tuple[int, str]:
    """Migrate and fill the database; return (id of the big datapoint, a Bearer token)."""
    subprocess.run(
        [sys.executable, "-m", "schema", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=env["DJANGOAPIDB_DBNAME"]
    ) as db:
        connector_id = db.execute(
            "INSERT INTO connector (name, date_added) VALUES ('bench-conn', now()) RETURNING id"
        ).fetchone()[0]
        ids = [
            row[0]
            for row in db.execute(
                "INSERT INTO datapoint (connector_id, key_in_connector, type, is_active, "
                "data_format, description, unit) "
                "SELECT %s, 'bench_s_' || n, 'sensor', true, 'unknown', '', '' "
                "FROM generate_series(1, %s) AS n RETURNING id",
                (connector_id, DATAPOINTS),
            ).fetchall()
        ]
        db.execute(
            "INSERT INTO datapoint_last_value (datapoint_id, time, value_num) "
            "SELECT id, now(), id * 1.5 FROM datapoint"
        )
        db.execute(
            "INSERT INTO datapoint_value (datapoint_id, time, value_num, value_raw) "
            "SELECT %s, to_timestamp(1795000000 + n * 60), n * 0.25, "
            "CASE WHEN n %% 10 = 0 THEN '\"text ' || n || '\"' END "
            "FROM generate_series(1, %s) AS n",
            (ids[0], HISTORY_ROWS),
        )
        db.execute("ANALYZE")
    subprocess.run(
        [sys.executable, "-m", "readapi", "createuser", "bench", "--superuser"],
        cwd=ROOT,
        env=env,
        input="bench-password\n",
        check=True,
        capture_output=True,
        text=True,
    )
    token = subprocess.run(
        [sys.executable, "-m", "readapi", "createtoken", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return ids[0], token


def _rows(body: bytes) -> int:
    """Rows in an answer: a list (history), a page of `results`, or the last values'
    `msgs_by_datapoint_id` map."""
    answer = json.loads(body)
    if isinstance(answer, dict):
        for key in ("results", "msgs_by_datapoint_id"):
            if key in answer:
                return len(answer[key])
    return len(answer)


def _p50_ms(
    connection: http.client.HTTPConnection, path: str, headers: dict, count: int, rows: int
) -> float:
    """p50 of `count` GETs of path, each of which must answer 200 with `rows` rows: a fast
    answer that is short (a wrong filter, an empty seed) is not a figure."""
    timings = []
    for _ in range(WARMUP + count):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:200]!r}")
        timings.append(elapsed)
    answered = _rows(body)
    if answered != rows:
        raise RuntimeError(f"GET {path} answered {answered} rows, not {rows}")
    return round(statistics.median(timings[WARMUP:]) * 1000, 3)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM")


def run() -> dict:
    database = f"bemcom_bench_readapi_{secrets.token_hex(4)}"
    port = free_port()
    env = _env(database, port)
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    server = None
    try:
        big_id, token = _seed(env)
        server = subprocess.Popen(
            [sys.executable, "-m", "readapi"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(port, timeout=30)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        bearer = {"Authorization": f"Bearer {token}", "Host": "localhost"}
        basic = {
            "Authorization": "Basic " + base64.b64encode(b"bench:bench-password").decode(),
            "Host": "localhost",
        }
        history = _p50_ms(connection, f"/datapoint/{big_id}/value/", bearer, REQUESTS, HISTORY_ROWS)
        last_value = _p50_ms(connection, "/datapoint/last_value/", bearer, REQUESTS, DATAPOINTS)
        small = f"/datapoint/last_value/?datapoint__id__in={big_id}"
        # Interleaved rounds, so drift (CPU frequency, other load) hits both alike.
        bearer_p50 = []
        basic_p50 = []
        for _ in range(5):
            bearer_p50.append(_p50_ms(connection, small, bearer, REQUESTS // 2, 1))
            basic_p50.append(_p50_ms(connection, small, basic, REQUESTS // 2, 1))
        overhead = statistics.median(basic_p50) - statistics.median(bearer_p50)
        connection.close()
        return {
            "history_10k_p50_ms": history,
            "last_value_100_p50_ms": last_value,
            "basic_auth_overhead_ms": round(overhead, 3),
            "readapi_peak_rss_mb": _peak_rss_mb(server.pid),
        }
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    print(json.dumps(run()))
