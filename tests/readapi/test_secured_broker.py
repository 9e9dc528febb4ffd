"""readapi against a broker that wants TLS and a password: a setpoint POSTed over REST arrives
on the broker, and a wrong password or CA is a clear exit 2 at start naming the setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

from tests.readapi.conftest import ADMIN, Scene
from tests.support.broker import free_port, wait_for_port
from tests.support.secured_broker import ROOT, Secured, assert_refused, run_refused, secured

__all__ = ["secured"]


def test_readapi_publishes_a_setpoint_over_tls(scene: Scene, secured: Secured, tmp_path):
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        **scene.env,
        **secured.env(),
        "BEMCOM_HTTP_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    topic = f"{scene.connector_name}/messages/101/setpoint"
    subscriber, messages = secured.subscriber(topic)
    process = subprocess.Popen(
        [sys.executable, "-m", "readapi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        setpoint = {
            "setpoint": [{"from_timestamp": None, "to_timestamp": None, "preferred_value": 21}],
            "timestamp": 1_795_840_319_412,
        }
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=ADMIN, timeout=30) as client:
            # The worker's publisher may still be finishing its TLS handshake: 503 until then.
            deadline = time.monotonic() + 30
            response = client.post("/datapoint/101/setpoint/", json=setpoint)
            while response.status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.2)
                response = client.post("/datapoint/101/setpoint/", json=setpoint)
            assert response.status_code == 201, response.text
        message = messages.get(timeout=30)
        assert json.loads(message.payload) == setpoint
    finally:
        process.terminate()
        process.wait(30)
        subscriber.disconnect()
        subscriber.loop_stop()


def test_readapi_with_a_wrong_password_exits_2(sqlite_env, secured: Secured):
    result = run_refused("readapi", {**sqlite_env, **secured.env(password="wrong")})
    assert_refused(result, "MQTT_BROKER_PASSWORD")


def test_readapi_with_a_wrong_ca_exits_2(sqlite_env, secured: Secured):
    env = {**sqlite_env, **secured.env(), "MQTT_BROKER_CA_FILE": str(secured.other_ca)}
    assert_refused(run_refused("readapi", env), "MQTT_BROKER_CA_FILE")
