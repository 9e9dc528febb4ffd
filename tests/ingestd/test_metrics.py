"""ingestd's Prometheus endpoint, and limits that protect it."""

from __future__ import annotations

import sqlite3
import threading
import time
import urllib.request

from schema import tables as t
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.ingestd.conftest import IngestFixture, ingest_settings
from tests.support.broker import free_port
from tests.support.ingest import count_rows, create_datapoints, publish_json, publisher, wait_for

T0 = 1_795_840_275_000


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_metrics_count_received_stored_rejected_and_show_the_queue(db_env, unique_name):
    port = free_port()
    fixture = IngestFixture(
        ingest_settings(db_env, INGESTD_METRICS_PORT=str(port), INGESTD_MAX_PAYLOAD_BYTES="200"),
        unique_name,
    )
    (dp,) = create_datapoints(fixture.engine, fixture.connector_id, ["s"])
    fixture.start()
    try:
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            for i in range(10):
                publish_json(client, fixture.topic(dp), {"value": i, "timestamp": T0 + i})
            publish_json(client, fixture.topic(dp), {"value": "x" * 500, "timestamp": T0 + 99})
            publish_json(client, fixture.topic(dp), b"{")
            wait_for(lambda: count_rows(fixture.engine, t.datapoint_value) == 10)

        def scraped_after_rejection():
            text = _scrape(port)
            return text if 'cause="malformed_json"' in text else None

        text = wait_for(scraped_after_rejection)
        assert 'ingestd_messages_received_total{kind="value"} 11.0' in text
        assert 'ingestd_messages_stored_total{kind="value"} 10.0' in text
        assert 'ingestd_messages_rejected_total{cause="payload_too_large",kind="value"} 1.0' in text
        assert 'ingestd_messages_rejected_total{cause="malformed_json",kind="value"} 1.0' in text
        assert "ingestd_queue_depth 0.0" in text
        assert "ingestd_mqtt_connected 1.0" in text
        assert "ingestd_lag_seconds_count" in text and "ingestd_batch_seconds_bucket" in text
    finally:
        fixture.stop()
        fixture.engine.dispose()


def test_sqlite_locked_by_another_writer_holds_messages_until_it_is_free(sqlite_env, unique_name):
    fixture = IngestFixture(ingest_settings(sqlite_env), unique_name)
    (dp,) = create_datapoints(fixture.engine, fixture.connector_id, ["s"])
    daemon = fixture.start()
    daemon.store.connection.execute("PRAGMA busy_timeout=200")  # fail fast, then retry
    blocker = sqlite3.connect(fixture.settings.sqlite_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    released = threading.Event()
    try:
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            for i in range(50):
                publish_json(client, fixture.topic(dp), {"value": i, "timestamp": T0 + i})
            time.sleep(2)
            # Held (in the inbox and in the writer's batch) while the database is locked.
            assert count_rows(fixture.engine, t.datapoint_value) == 0
            blocker.execute("COMMIT")
            released.set()
            wait_for(lambda: count_rows(fixture.engine, t.datapoint_value) == 50)
    finally:
        if not released.is_set():
            blocker.execute("COMMIT")
        blocker.close()
        fixture.stop()
        fixture.engine.dispose()
