"""`make run` end to end: `python -m deploy.run` with its embedded broker, real processes.

Checks what a newcomer sees: credentials printed, demo values arriving through ingestd into
the database and out of readapi, an actuator command answered by the demo, readapi reachable
from this machine only, and Ctrl-C stopping every process. A second start keeps the admin and
the datapoints, and listens where BEMCOM_HTTP_HOST says.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from deploy.broker import broker_answers, find_mosquitto
from tests.support.broker import free_port
from tests.support.listening import listening_addresses

pytestmark = pytest.mark.skipif(
    find_mosquitto(os.environ.get("PATH", "")) is None, reason="mosquitto is not installed"
)

REPO = Path(__file__).resolve().parents[2]


class Launcher:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deploy.run"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log.open("ab"),
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for_line(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, f"launcher exited: {self.output}"
                continue
            self.output.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout} s: {self.output}")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        return self.process.wait(timeout=40)


def poll(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out: {what}")


def test_make_run_shows_demo_data_and_stops_cleanly(tmp_path: Path):
    http_port, mqtt_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MQTT_", "DJANGO", "ACTIVATE_", "BEMCOM_", "INGESTD_"))
    }
    env.update(
        BEMCOM_DATA_DIR=str(tmp_path / "data"),
        BEMCOM_HTTP_PORT=str(http_port),
        MQTT_BROKER_PORT=str(mqtt_port),  # nothing listens there: the launcher starts one
        INGESTD_METRICS_PORT="0",
        LOGLEVEL="INFO",
    )
    launcher = Launcher(env, tmp_path / "launcher.log")
    try:
        login = launcher.wait_for_line("Log in as", timeout=90)
        password = login.split("/")[1].split()[0]
        assert "generated now" in login
        launcher.wait_for_line("Press Ctrl-C", timeout=5)
        banner = "".join(launcher.output)
        assert f"http://localhost:{http_port}/" in banner
        assert f"http://localhost:{http_port}/admin/" in banner
        assert "embedded mosquitto" in banner
        assert broker_answers("127.0.0.1", mqtt_port)
        assert (tmp_path / "data" / "db.sqlite3").exists()
        # Only this machine reaches readapi (BEMCOM_HTTP_HOST defaults to 127.0.0.1 here).
        assert listening_addresses(http_port) == {"127.0.0.1"}

        api = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", auth=("admin", password))
        datapoints = {d["key_in_connector"]: d for d in api.get("/datapoint/").json()}
        assert datapoints["room_temperature"]["unit"] == "°C"
        assert datapoints["room_setpoint"]["type"] == "actuator"
        ids = {key: str(d["id"]) for key, d in datapoints.items()}
        sensor_ids = {ids[k] for k, d in datapoints.items() if d["type"] == "sensor"}

        def last_values():
            found = api.get("/datapoint/last_value/").json()["msgs_by_datapoint_id"]
            return found if sensor_ids <= set(found) else None

        poll(last_values, 30, "demo values in /datapoint/last_value/")
        health = subprocess.run(
            [sys.executable, "-m", "deploy.healthcheck", "all"], cwd=REPO, env=env
        )
        assert health.returncode == 0  # the image's HEALTHCHECK, against the real processes

        # A command through the REST API reaches the demo, whose answer comes back in.
        sent = api.post(
            f"/datapoint/{ids['room_setpoint']}/value/",
            json={"value": "23.5", "timestamp": int(time.time() * 1000)},
        )
        assert sent.status_code == 201, sent.text
        state = ids["room_setpoint_state"]
        poll(
            lambda: last_values()[state]["value"] == "23.5",
            20,
            "the setpoint state follows the actuator",
        )
        api.close()
    finally:
        code = launcher.interrupt()
    assert code == 0
    assert not broker_answers("127.0.0.1", mqtt_port)
    assert not broker_answers("127.0.0.1", http_port)

    # The second start keeps what the first created.
    again = Launcher({**env, "BEMCOM_HTTP_HOST": "0.0.0.0"}, tmp_path / "launcher.log")
    try:
        login = again.wait_for_line("Log in as", timeout=90)
        assert "created earlier" in login
        assert listening_addresses(http_port) == {"0.0.0.0"}
        api = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", auth=("admin", password))
        assert {d["key_in_connector"]: str(d["id"]) for d in api.get("/datapoint/").json()} == ids
        api.close()
    finally:
        assert again.interrupt() == 0


def test_a_taken_port_is_reported_before_anything_starts(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MQTT_", "BEMCOM_"))}
        env.update(BEMCOM_DATA_DIR=str(tmp_path / "data"), BEMCOM_HTTP_PORT=str(port))
        done = subprocess.run(
            [sys.executable, "-m", "deploy.run"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"BEMCOM_HTTP_PORT={port + 1}" in done.stderr
