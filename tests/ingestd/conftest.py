from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from ingestd.daemon import IngestDaemon
from schema.database import create_sqlalchemy_engine
from schema.settings import Settings, load_settings
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.support.ingest import create_connector


def drop_session(host: str, port: int, client_id: str) -> None:
    """Remove a test's persistent session from the shared broker."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    try:
        client.connect(host, port, clean_start=True)
        client.disconnect()
    except OSError:
        pass


class IngestFixture:
    def __init__(
        self, settings: Settings, connector_name: str, connector_id: int | None = None
    ) -> None:
        self.settings = settings
        self.engine = create_sqlalchemy_engine(settings)
        self.connector_name = connector_name
        self.connector_id = connector_id or create_connector(self.engine, connector_name)
        self.daemon: IngestDaemon | None = None

    def start(self) -> IngestDaemon:
        self.daemon = IngestDaemon(self.settings)
        self.daemon.start()
        assert self.daemon.wait_subscribed(10), "ingestd did not subscribe within 10 s"
        return self.daemon

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def topic(self, datapoint_id: int, kind: str = "value") -> str:
        return f"{self.connector_name}/messages/{datapoint_id}/{kind}"


class IngestdProcess:
    """`python -m ingestd` as its own process, started once it reports being connected.

    Its log is read to the end by a thread, so a chatty daemon never blocks on a full pipe.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ingestd"], env=env, stderr=subprocess.PIPE, text=True
        )
        connected = threading.Event()
        self.lines: list[str] = []

        def read_log() -> None:
            for line in self.process.stderr:
                self.lines.append(line)
                if "mqtt_connected" in line:
                    connected.set()
            connected.set()  # exited: let the caller see it rather than hang

        self._reader = threading.Thread(target=read_log, daemon=True)
        self._reader.start()
        connected.wait(30)
        assert self.process.poll() is None, "ingestd exited during start-up"

    def signal(self, signum: int) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(30)
        self._reader.join(10)  # every line of its log read
        return code


def ingest_settings(env: dict[str, str], **overrides: str) -> Settings:
    env = {**env, "INGESTD_CLIENT_ID": f"ingestd-test-{secrets.token_hex(4)}", **overrides}
    return load_settings(env)


@pytest.fixture
def ingest(db_env: dict[str, str], unique_name: str) -> Iterator[IngestFixture]:
    """A connector in a fresh database (PostgreSQL, then SQLite) and an ingestd for it,
    started by the test once it has created its datapoints."""
    fixture = IngestFixture(ingest_settings(db_env), unique_name)
    yield fixture
    fixture.stop()
    fixture.engine.dispose()
    drop_session(MQTT_HOST, MQTT_PORT, fixture.settings.ingestd_client_id)
