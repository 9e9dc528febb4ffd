"""A private Mosquitto with a TLS listener and a password file, and clients for it: shared by
the secured-broker tests of ingestd, readapi and the demo connector."""

from __future__ import annotations

import os
import queue
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from schema.broker_security import configure_client
from schema.settings import load_settings
from tests.support.broker import MosquittoProcess, SecuredBroker, make_ca

ROOT = Path(__file__).resolve().parents[2]
USERS = {"bemcom": "right-" + secrets.token_hex(4), "tester": "tester-" + secrets.token_hex(4)}


class Secured:
    def __init__(self, broker: MosquittoProcess, files: SecuredBroker, other_ca: Path) -> None:
        self.broker = broker
        self.files = files
        self.other_ca = other_ca  # a CA that did not sign the broker's certificate

    def env(self, user: str | None = "bemcom", password: str | None = None) -> dict[str, str]:
        env = {
            "MQTT_BROKER_HOST": "127.0.0.1",
            "MQTT_BROKER_PORT": str(self.broker.port),
            "MQTT_BROKER_TLS": "TRUE",
            "MQTT_BROKER_CA_FILE": str(self.files.ca_file),
        }
        if user is not None:
            env["MQTT_BROKER_USERNAME"] = user
            env["MQTT_BROKER_PASSWORD"] = password or USERS[user]
        return env

    def client(self) -> mqtt.Client:
        """A connected, looping client of the test's own user, configured as the service is."""
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{secrets.token_hex(4)}"
        )
        configure_client(client, load_settings(self.env("tester")))
        client.connect("127.0.0.1", self.broker.port)
        client.loop_start()
        return client

    def subscriber(self, topic: str) -> tuple[mqtt.Client, queue.Queue]:
        messages: queue.Queue = queue.Queue()
        subscribed: queue.Queue = queue.Queue()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{secrets.token_hex(4)}"
        )
        configure_client(client, load_settings(self.env("tester")))
        client.on_message = lambda _c, _u, message: messages.put(message)
        client.on_subscribe = lambda *_args: subscribed.put(True)
        client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe(topic, qos=2)
        client.connect("127.0.0.1", self.broker.port)
        client.loop_start()
        subscribed.get(timeout=30)
        return client, messages


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    directory = tmp_path_factory.mktemp("secured-broker")
    files = SecuredBroker(directory / "tls", USERS)
    other_ca, _key = make_ca(directory / "other", "other")
    broker = MosquittoProcess(directory / "mosquitto", secured=files)
    broker.start()
    try:
        yield Secured(broker, files, other_ca)
    finally:
        broker.stop()


def run_refused(module: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run `python -m module` to its end (it should refuse to start) and return the result."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_refused(result: subprocess.CompletedProcess, setting: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "mqtt_broker_refused" in output and setting in output, output
    assert "Traceback" not in output, output
