"""The demo connector against a broker that wants TLS and a password: it publishes, and a
wrong CA is a clear exit 2 at start naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.secured_broker import ROOT, Secured, assert_refused, run_refused, secured

__all__ = ["secured"]


def test_demo_publishes_over_tls(secured: Secured, unique_name: str):
    subscriber, messages = secured.subscriber(f"{unique_name}/#")
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "--name", unique_name, "--interval", "0.2"],
        cwd=ROOT,
        env={**os.environ, **secured.env(), "BEMCOM_LOG_JSON": "FALSE"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        message = messages.get(timeout=30)
        assert message.topic.startswith(f"{unique_name}/")
    finally:
        process.terminate()
        process.wait(30)
        subscriber.disconnect()
        subscriber.loop_stop()


def test_demo_with_a_wrong_ca_exits_2(secured: Secured):
    env = {**secured.env(), "MQTT_BROKER_CA_FILE": str(secured.other_ca)}
    assert_refused(run_refused("demo", env), "MQTT_BROKER_CA_FILE")
