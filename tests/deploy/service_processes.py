"""`python -m ingestd` and `python -m readapi` as real processes, for the deploy tests.

Each yields once it answers on its port; output goes to a file (never a pipe nobody reads),
and the process is stopped however the test ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.broker import free_port

REPO = Path(__file__).resolve().parents[2]


def poll(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    """The first truthy result of `condition`, tried every 0.1 s until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.1)


def get(url: str, auth: tuple[str, str] | None = None) -> str | None:
    request = urllib.request.Request(url)
    if auth is not None:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


@contextlib.contextmanager
def _process(
    module: str, env: dict[str, str], log: Path, ready_url: str, auth=None
) -> Iterator[subprocess.Popen]:
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:

        def answers():
            assert process.poll() is None, f"{module} exited: {log.read_text()[-2000:]}"
            return get(ready_url, auth)

        poll(answers, 60, f"{module} answering {ready_url}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def ingestd(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """ingestd with a metrics port of its own; yields (process, metrics URL)."""
    port = free_port()
    env = {
        **env,
        "INGESTD_METRICS_PORT": str(port),
        "INGESTD_CLIENT_ID": f"deploy-test-{secrets.token_hex(4)}",
    }
    url = f"http://127.0.0.1:{port}/metrics"
    with _process("ingestd", env, log, url) as process:
        yield process, url


@contextlib.contextmanager
def readapi(
    env: dict[str, str], log: Path, workers: int = 1
) -> Iterator[tuple[subprocess.Popen, str]]:
    """readapi on a port of its own; yields (process, base URL)."""
    port = free_port()
    env = {**env, "BEMCOM_HTTP_PORT": str(port), "N_WORKER_PROCESSES": str(workers)}
    base = f"http://127.0.0.1:{port}"
    with _process("readapi", env, log, f"{base}/health/live") as process:
        yield process, base


@contextlib.contextmanager
def fresh_postgres_env() -> Iterator[dict[str, str]]:
    """The environment of a new, empty PostgreSQL database, which the processes under test
    migrate themselves. Not a copy of the suite's template: with TimescaleDB preloaded, its
    background scheduler may hold a connection to the template, and CREATE DATABASE ...
    TEMPLATE then fails at random ("is being accessed by other users")."""
    from tests.conftest import admin_connect, pg_database_env

    name = f"bemcom_deploy_{secrets.token_hex(6)}"
    with admin_connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_database_env(name)
    finally:
        with admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
