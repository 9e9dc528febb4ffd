"""Issue 12, finding 1: a message costs at most itself, and a dead thread is not hidden.

Each reproduction fails on the code before the fix: the writer thread died on the first bad
message (UnicodeDecodeError, RecursionError escaped the decoder), nothing was stored after it,
and the process stayed up. Real broker, real ingestd, both backends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.ingestd.conftest import drop_session, ingest_settings
from tests.support.ingest import (
    create_datapoints,
    metric_total,
    now_ms,
    publish_json,
    publisher,
    value_rows,
    wait_for,
)
from tests.support.thread_fault import kill_thread

REPO = Path(__file__).resolve().parents[2]


def ready(daemon) -> float | None:
    return daemon.metrics.registry.get_sample_value("ingestd_ready")


def rejected(daemon, **labels: str) -> float:
    return metric_total(daemon, "ingestd_messages_rejected", **labels)


def _bad_value_payloads(timestamp: int) -> list[tuple[bytes, str]]:
    deep = b"[" * 5000 + b"]" * 5000
    return [
        # The 42 bytes: invalid UTF-8 inside a JSON string.
        (b'{"value": "\xff", "timestamp": %d}' % timestamp, "invalid_utf8"),
        (b'{"value": %s, "timestamp": %d}' % (deep, timestamp), "too_deep"),
        (b'{"value": {"a": %s}, "timestamp": %d}' % (deep, timestamp), "too_deep"),
    ]


def test_a_bad_value_costs_only_itself(ingest):
    (dp,) = create_datapoints(ingest.engine, ingest.connector_id, ["s1"])
    daemon = ingest.start()
    start = now_ms()
    bad = _bad_value_payloads(start)
    assert len(bad[0][0]) == 42
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        for i, (payload, _cause) in enumerate(bad):
            publish_json(client, ingest.topic(dp), {"value": i, "timestamp": start + 1 + i})
            publish_json(client, ingest.topic(dp), payload)
        publish_json(client, ingest.topic(dp), {"value": "after", "timestamp": start + 10})
    wait_for(lambda: len(value_rows(ingest.engine, dp)) == 4)
    rows = value_rows(ingest.engine, dp)
    assert [time for time, _num, _raw in rows] == [start + 1, start + 2, start + 3, start + 10]
    assert rows[-1][2] == '"after"'
    wait_for(lambda: rejected(daemon, kind="value") == 3)
    assert rejected(daemon, kind="value", cause="invalid_utf8") == 1
    assert rejected(daemon, kind="value", cause="too_deep") == 2
    assert daemon.dead_threads() == [] and ready(daemon) == 1


def test_a_retained_bad_announcement_replayed_at_start_costs_only_itself(ingest):
    (dp,) = create_datapoints(ingest.engine, ingest.connector_id, ["s1"])
    topic = f"{ingest.connector_name}/available_datapoints"
    with publisher(MQTT_HOST, MQTT_PORT) as client:
        publish_json(client, topic, b'{"sensor": {"k1": "\xff"}}', retain=True)
        try:
            daemon = ingest.start()  # the broker replays the retained message now
            wait_for(lambda: rejected(daemon, kind="available_datapoints") == 1)
            assert rejected(daemon, kind="available_datapoints", cause="invalid_utf8") == 1
            publish_json(client, ingest.topic(dp), {"value": 5, "timestamp": now_ms()})
            wait_for(lambda: len(value_rows(ingest.engine, dp)) == 1)
            assert daemon.dead_threads() == [] and ready(daemon) == 1
        finally:
            publish_json(client, topic, b"", retain=True)  # clears the retained message


THREADS = ["writer-0", "control-plane", "paho-mqtt-client-"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("prefix", THREADS)
def test_a_dead_thread_makes_ingestd_not_ready(sqlite_env, unique_name, prefix):
    from tests.ingestd.conftest import IngestFixture

    fixture = IngestFixture(ingest_settings(sqlite_env), unique_name)
    try:
        daemon = fixture.start()
        assert ready(daemon) == 1
        failed = threading.Event()
        daemon.on_failure = failed.set
        # This daemon's own thread (another test's paho client may share the name prefix).
        (thread,) = [
            t
            for t in (*daemon.writers, daemon._control_thread, daemon._network_thread)
            if t is not None and t.name.startswith(prefix)
        ]
        kill_thread(thread)
        assert failed.wait(30), "the watchdog did not notice the dead thread"
        assert ready(daemon) == 0
        assert any(name.startswith(prefix) for name in daemon.dead_threads())
    finally:
        fixture.stop()
        fixture.engine.dispose()
        drop_session(MQTT_HOST, MQTT_PORT, fixture.settings.ingestd_client_id)


@pytest.mark.parametrize("prefix", THREADS)
def test_a_dead_thread_makes_ingestd_exit_3(sqlite_env, unique_name, prefix, tmp_path):
    settings = ingest_settings(sqlite_env)
    trigger = tmp_path / "kill"
    env = {**os.environ, **sqlite_env, "INGESTD_CLIENT_ID": settings.ingestd_client_id}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.thread_fault", prefix, str(trigger)],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    connected = threading.Event()

    def read_log() -> None:
        for line in process.stderr:
            lines.append(line)
            if "mqtt_connected" in line:
                connected.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        assert connected.wait(30), "".join(lines)
        trigger.touch()
        assert process.wait(30) == 3, "".join(lines)
        reader.join(5)
        died = [line for line in lines if "ingestd_thread_died" in line]
        assert died and prefix in died[0], "".join(lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        drop_session(MQTT_HOST, MQTT_PORT, settings.ingestd_client_id)
