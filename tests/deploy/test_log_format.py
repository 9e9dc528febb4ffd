"""One log format per process: the real `python -m readapi` and `python -m ingestd` write only
JSON lines with BEMCOM_LOG_JSON=TRUE, and only readable lines with FALSE, including what
uvicorn, alembic and Litestar log through the standard library (before, uvicorn's
`INFO:     Started server process` lines sat between the JSON ones)."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.broker import free_port

REPO = Path(__file__).resolve().parents[2]
MQTT_HOST = os.environ.get("BEMCOM_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = os.environ.get("BEMCOM_TEST_MQTT_PORT", "1883")
# ConsoleRenderer's lines start with the ISO timestamp.
READABLE_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def service_env(tmp_path: Path, log_json: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MQTT_", "DJANGO", "ACTIVATE_", "BEMCOM_", "INGESTD_", "READAPI_"))
    }
    env.update(
        BEMCOM_DATA_DIR=str(tmp_path / "data"),
        BEMCOM_LOG_JSON=log_json,
        MQTT_BROKER_HOST=MQTT_HOST,
        MQTT_BROKER_PORT=MQTT_PORT,
        INGESTD_METRICS_PORT="0",
        LOGLEVEL="DEBUG",  # uvicorn's access log too
        **extra,
    )
    return env


class Service:
    """A real process whose stdout and stderr go to files (no pipe can fill up)."""

    def __init__(self, module: str, env: dict[str, str], directory: Path) -> None:
        self.out, self.err = directory / f"{module}.out", directory / f"{module}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module], cwd=REPO, env=env, stdout=out, stderr=err
            )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def lines(self) -> list[str]:
        text = self.out.read_text() + self.err.read_text()
        return [line for line in text.splitlines() if line.strip()]

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.out.read_text() + self.err.read_text():
                return
            assert self.process.poll() is None, f"exited: {self.lines()[-20:]}"
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} within {timeout} s: {self.lines()[-20:]}")


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def serve_readapi(tmp_path: Path, log_json: str, workers: str) -> list[str]:
    """Start readapi, make requests that log (uvicorn's access log, a 404, the admin login
    page), stop it, and return every line it wrote."""
    port = free_port()
    env = service_env(
        tmp_path,
        log_json,
        BEMCOM_HTTP_PORT=str(port),
        N_WORKER_PROCESSES=workers,
        DJANGO_SUPERUSER_USERNAME="root",
        DJANGO_SUPERUSER_PASSWORD="s3cret-pass",
        DJANGO_SUPERUSER_EMAIL="root@example.com",
    )
    service = Service("readapi", env, tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while get(f"{base}/health/live") != 200:
            assert service.process.poll() is None, f"readapi exited: {service.lines()[-20:]}"
            assert time.monotonic() < deadline, f"readapi did not answer: {service.lines()[-20:]}"
            time.sleep(0.3)
        assert get(f"{base}/no-such-route/") == 404
        assert get(f"{base}/admin/login") == 200
        service.wait_for("GET /admin/login HTTP/1.1")  # the access log line is written
    finally:
        code = service.stop(signal.SIGINT)  # what Ctrl-C and uvicorn's supervisor expect
    assert code == 0, service.lines()[-20:]
    return service.lines()


def parse_json_lines(lines: list[str]) -> list[dict]:
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(event, dict), line
        assert {"event", "level", "timestamp"} <= set(event), line
        events.append(event)
    return events


def test_readapi_writes_one_log_format(tmp_path: Path):
    events = parse_json_lines(serve_readapi(tmp_path, "TRUE", workers="2"))
    by_logger: dict[str, list[str]] = {}
    for event in events:
        by_logger.setdefault(event.get("logger", ""), []).append(event["event"])
    # Each library's records arrived, as JSON: alembic (in the preparing child), uvicorn's
    # supervisor and both spawned workers, uvicorn's access log.
    assert any(e.startswith("Running upgrade") for e in by_logger["alembic.runtime.migration"])
    assert any(e.startswith("Started parent process") for e in by_logger["uvicorn.error"])
    started = [e for e in by_logger["uvicorn.error"] if e.startswith("Started server process")]
    assert len(started) == 2, by_logger["uvicorn.error"]
    assert any("GET /no-such-route/ HTTP/1.1" in e for e in by_logger["uvicorn.access"])
    # and the service's own events
    assert sum(e["event"] == "readapi_started" for e in events) == 2


def test_readapi_writes_only_readable_lines_when_asked(tmp_path: Path):
    lines = serve_readapi(tmp_path, "FALSE", workers="1")
    for line in lines:
        assert READABLE_LINE.match(line), f"not a readable log line: {line!r}"
        assert not line.lstrip().startswith("{"), line
    assert any("Started server process" in line and "uvicorn.error" in line for line in lines)
    assert any("Running upgrade" in line for line in lines)


def test_ingestd_writes_one_log_format(tmp_path: Path):
    env = service_env(tmp_path, "TRUE", INGESTD_CLIENT_ID=f"test-log-{secrets.token_hex(4)}")
    service = Service("ingestd", env, tmp_path)
    try:
        service.wait_for("ingestd_started", timeout=60)
        service.wait_for("mqtt_connected", timeout=60)
    finally:
        code = service.stop()
    assert code == 0, service.lines()[-20:]
    events = parse_json_lines(service.lines())
    names = [e["event"] for e in events]
    assert any(
        e["event"].startswith("Running upgrade") and e["logger"] == "alembic.runtime.migration"
        for e in events
    ), names
    assert "ingestd_stopped" in names
