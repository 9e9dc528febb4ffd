"""Finding the Mosquitto binary, and what the launcher says when there is none."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deploy.broker import BrokerMissing, EmbeddedBroker, broker_answers, find_mosquitto
from tests.support.broker import free_port


def test_no_binary_gives_install_instructions(tmp_path: Path):
    assert find_mosquitto(str(tmp_path), extra_dirs=()) is None
    with pytest.raises(BrokerMissing) as raised:
        EmbeddedBroker(None, tmp_path, 1883)
    message = str(raised.value)
    assert "apt-get install mosquitto" in message
    assert "MQTT_BROKER_HOST" in message


def test_binary_found_on_path_or_in_sbin(tmp_path: Path):
    fake = tmp_path / "mosquitto"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert find_mosquitto(str(tmp_path), extra_dirs=()) == str(fake)
    assert find_mosquitto("", extra_dirs=(str(tmp_path),)) == str(fake)


def test_embedded_broker_persists_and_stops(tmp_path: Path):
    binary = find_mosquitto(os.environ.get("PATH", ""))
    if binary is None:
        pytest.skip("mosquitto is not installed")
    port = free_port()
    broker = EmbeddedBroker(binary, tmp_path / "mosquitto", port)
    broker.start()
    try:
        assert broker_answers("127.0.0.1", port)
        config = (tmp_path / "mosquitto" / "mosquitto.conf").read_text()
        assert "persistence true" in config and "max_queued_messages 1000000" in config
        assert f"listener {port} 127.0.0.1" in config  # anonymous, so loopback only
    finally:
        broker.stop()
    assert not broker_answers("127.0.0.1", port)
    assert (tmp_path / "mosquitto" / "mosquitto.db").exists()  # saved on SIGTERM
