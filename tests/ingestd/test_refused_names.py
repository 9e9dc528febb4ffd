"""Issue 12, finding 2 in ingestd: names the broker refuses, already in the database.

Before: ingestd subscribed to `<name>/logs` of every connector; for a name such as
"x\\tpoison" the broker disconnected it on every (re)subscribe, `ingestd_mqtt_connected`
stayed 0 and nothing was stored for any connector. Now such connectors and controllers are
left out with a warning and `ingestd_refused_names`, and the rest is served.

A real `python -m ingestd` process against the real broker, on both backends.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import urllib.request

from sqlalchemy import delete, insert

from schema import tables as t
from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.ingestd.conftest import drop_session
from tests.support.broker import free_port
from tests.support.ingest import (
    Collector,
    create_connector,
    create_datapoints,
    now_ms,
    publish_json,
    publisher,
    value_rows,
    wait_for,
)

DEADLINE_S = 30.0


class Ingestd:
    """`python -m ingestd` with its metrics on a port of its own; its log kept."""

    def __init__(self, env: dict[str, str]) -> None:
        self.metrics_port = free_port()
        self.client_id = f"ingestd-names-{secrets.token_hex(4)}"
        env = {
            **os.environ,
            **env,
            "INGESTD_CLIENT_ID": self.client_id,
            "INGESTD_METRICS_PORT": str(self.metrics_port),
        }
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ingestd"], env=env, stderr=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def metric(self, name: str, **labels: str) -> float | None:
        """The sample's value from /metrics, or None if it is not (yet) there."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
            ) as answer:
                text = answer.read().decode()
        except OSError:
            return None
        wanted = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        )
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return None

    def logged(self, event: str) -> list[str]:
        return [line for line in self.lines if event in line]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        drop_session(MQTT_HOST, MQTT_PORT, self.client_id)


def _controller(engine, name: str, sensor: int, actuator: int) -> int:
    with engine.begin() as connection:
        controller_id = connection.execute(
            insert(t.controller).values(name=name).returning(t.controller.c.id)
        ).scalar_one()
        connection.execute(
            insert(t.controlled_datapoint).values(
                controller_id=controller_id,
                sensor_datapoint_id=sensor,
                actuator_datapoint_id=actuator,
                is_active=True,
            )
        )
    return controller_id


def test_ingestd_leaves_refused_names_out_and_serves_the_rest(db_env, unique_name):
    engine = create_sqlalchemy_engine(load_settings(db_env))
    good = create_connector(engine, unique_name)
    (sensor,) = create_datapoints(engine, good, ["temp"])
    (actuator,) = create_datapoints(engine, good, ["valve"], "actuator")
    # Refused names, as an older version or psql could have stored them, each with an
    # active datapoint (a subscription) and one inside a controlled pair.
    refused = [f"{unique_name}\tpoison", f"{unique_name}\x85", f"{unique_name}\ufffe"]
    poisoned_ids = [create_connector(engine, name) for name in refused]
    (poisoned_sensor,) = create_datapoints(engine, poisoned_ids[0], ["t"])
    for connector_id in poisoned_ids[1:]:
        create_datapoints(engine, connector_id, ["t"])
    _controller(engine, f"{unique_name}-ctl\x7f", sensor, actuator)
    _controller(engine, f"{unique_name}-ctl", poisoned_sensor, actuator)
    controlled = f"{unique_name}-ctl/controlled_datapoints"
    ingestd = Ingestd(db_env)
    try:
        wait_for(lambda: ingestd.metric("ingestd_subscribed") == 1.0, timeout=DEADLINE_S)
        assert ingestd.metric("ingestd_mqtt_connected") == 1.0
        assert ingestd.metric("ingestd_refused_names", kind="connector") == 3.0
        assert ingestd.metric("ingestd_refused_names", kind="controller") == 1.0
        warnings = ingestd.logged("name_refused_by_broker")
        assert len(warnings) == 4, warnings
        assert any("U+0009" in line for line in warnings)
        assert any("U+FFFE" in line for line in warnings)
        # The sound controller's pair points at a refused connector's datapoint: left out.
        collector = Collector(MQTT_HOST, MQTT_PORT, [controlled])
        try:
            wait_for(lambda: collector.payloads(controlled), timeout=DEADLINE_S)
            assert collector.payloads(controlled) == [b"[]"]
        finally:
            collector.close()

        with publisher(MQTT_HOST, MQTT_PORT) as client:
            value = {"value": 21.5, "timestamp": now_ms()}
            publish_json(client, f"{unique_name}/messages/{sensor}/value", value)
            wait_for(lambda: value_rows(engine, sensor), timeout=DEADLINE_S)

            # One more arrives while ingestd runs (the control plane's sync path).
            late = create_connector(engine, f"{unique_name}#late")
            create_datapoints(engine, late, ["t"])
            wait_for(
                lambda: ingestd.metric("ingestd_refused_names", kind="connector") == 4.0,
                timeout=DEADLINE_S,
            )
            # Deleted, it is no longer counted.
            with engine.begin() as connection:
                connection.execute(delete(t.connector).where(t.connector.c.id == late))
            wait_for(
                lambda: ingestd.metric("ingestd_refused_names", kind="connector") == 3.0,
                timeout=DEADLINE_S,
            )
            publish_json(client, f"{unique_name}/messages/{actuator}/value", value)
            wait_for(lambda: value_rows(engine, actuator), timeout=DEADLINE_S)

        assert ingestd.metric("ingestd_mqtt_connected") == 1.0
        assert ingestd.metric("ingestd_subscribed") == 1.0
        # Connected once, never dropped by the broker.
        assert len(ingestd.logged("mqtt_connected")) == 1, ingestd.lines
        assert not ingestd.logged("mqtt_disconnected"), ingestd.logged("mqtt_disconnected")
        assert len(ingestd.logged("name_refused_by_broker")) == 5
        assert ingestd.process.poll() is None
    finally:
        ingestd.stop()
        engine.dispose()
        with publisher(MQTT_HOST, MQTT_PORT) as client:  # leave no retained maps behind
            for topic in (
                f"{unique_name}/datapoint_map",
                f"{unique_name}-ctl/controlled_datapoints",
            ):
                publish_json(client, topic, b"", retain=True)
