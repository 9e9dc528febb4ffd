"""A real `python -m readapi` with its workers, for tests about worker processes.

Every log line is read as it comes (JSON); events the workers log with their pid (`worker`)
show which worker served a request. Requests go out on a fresh connection each, from a
chosen loopback address (127.0.0.x), so either worker may take them and the login throttle
sees distinct clients.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from schema.database import create_sqlalchemy_engine
from schema.migrate import migrate
from schema.settings import load_settings
from tests.conftest import admin_connect, base_env, copy_template, pg_database_env
from tests.support.broker import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 30.0


@contextlib.contextmanager
def database_env(kind: str, pg_template: str, directory: Path) -> Iterator[dict[str, str]]:
    """The environment of a fresh migrated database: "postgres" (a copy of the template)
    or "sqlite" (a file under `directory`)."""
    if kind == "sqlite":
        env = base_env(BEMCOM_DATA_DIR=str(directory / "data"))
        engine = create_sqlalchemy_engine(load_settings(env))
        migrate(engine)
        engine.dispose()
        yield env
        return
    name = f"bemcom_test_{secrets.token_hex(6)}"
    with admin_connect() as conn:
        copy_template(conn, name, pg_template)
    try:
        yield pg_database_env(name)
    finally:
        with admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def worker_pids(pid: int) -> set[int]:
    """uvicorn's worker processes (spawned), not multiprocessing's resource tracker."""
    found = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(int(child))
    return found


class ReadapiProcess:
    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        self.workers = workers
        self.env = {
            **os.environ,
            **env,
            "BEMCOM_HTTP_PORT": str(self.port),
            "N_WORKER_PROCESSES": str(workers),
            "LOGLEVEL": "DEBUG",
            "BEMCOM_LOG_JSON": "TRUE",
        }
        self.events: list[dict] = []
        self.lines: list[str] = []
        self._cursor = 0
        self._changed = threading.Condition()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "readapi"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        wait_for_port(self.port, timeout=DEADLINE_S)
        # Both workers have run their start-up (each logs readapi_started once).
        self.wait_until(lambda: len(self.named("readapi_started")) >= self.workers)

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict) and "event" in event:
                        self.events.append(event)
                self._changed.notify_all()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        with self._changed:
            return "\n".join(self.lines[-lines:])

    def named(self, name: str) -> list[dict]:
        with self._changed:
            return [e for e in self.events if e["event"] == name]

    def wait_until(self, condition, timeout: float = DEADLINE_S) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"timed out; log tail:\n{self.log_tail()}"
                self._changed.wait(min(remaining, 0.5))

    def next_event(self, *names: str, timeout: float = DEADLINE_S) -> dict:
        """The next event (after the last one this returned) with one of these names."""
        found: list[dict] = []

        def seen() -> bool:
            while self._cursor < len(self.events):
                event = self.events[self._cursor]
                self._cursor += 1
                if event["event"] in names:
                    found.append(event)
                    return True
            return False

        self.wait_until(seen, timeout)
        return found[0]

    def skip_events(self) -> None:
        """Forget the events so far: next_event looks only at later ones."""
        with self._changed:
            self._cursor = len(self.events)

    def request(
        self, method: str, path: str, *, source: str = "127.0.0.1", **kwargs
    ) -> httpx.Response:
        """One request on a connection of its own, from the loopback address `source`."""
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=self.url, transport=transport, timeout=DEADLINE_S) as client:
            return client.request(method, path, **kwargs)

    def worker_pids(self) -> set[int]:
        assert self.process is not None
        return worker_pids(self.process.pid)
