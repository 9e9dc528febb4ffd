"""Nothing acknowledged is lost when the broker restarts, the database goes away for a
minute, or ingestd is asked to stop. Real Mosquitto and PostgreSQL processes are stopped and
started (private instances, so other tests keep theirs)."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import text

from schema import tables as t
from schema.database import create_sqlalchemy_engine
from schema.migrate import migrate
from tests.conftest import MQTT_HOST, MQTT_PORT, base_env
from tests.ingestd.conftest import IngestdProcess, IngestFixture, drop_session, ingest_settings
from tests.support.broker import free_port
from tests.support.fault_report import Stopwatch, record_fault_cost, scrape_total
from tests.support.ingest import (
    count_rows,
    create_datapoints,
    metric_total,
    publisher,
    wait_for,
)
from tests.support.postgres import PostgresProcess

OUTAGE_S = float(os.environ.get("BEMCOM_TEST_OUTAGE_S", "60"))
T0 = 1_795_840_275_000
pytestmark = pytest.mark.slow


class SteadyPublisher(threading.Thread):
    """Publishes QoS 1 values at a steady rate, riding out broker restarts."""

    def __init__(self, port: int, topics: list[str], rate: float) -> None:
        super().__init__(daemon=True)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"pub-{secrets.token_hex(4)}",
            clean_session=False,
        )
        self.client.max_inflight_messages_set(20)
        self.client.reconnect_delay_set(0.2, 1)
        self.acked: set[int] = set()
        self.client.on_publish = lambda _c, _u, mid, _rc, _p: self.acked.add(mid)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.topics = topics
        self.interval = 1 / rate
        self.sent = 0
        self.mids: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            topic = self.topics[self.sent % len(self.topics)]
            payload = b'{"value": %d, "timestamp": %d}' % (self.sent, T0 + self.sent)
            self.mids.append(self.client.publish(topic, payload, qos=1).mid)
            self.sent += 1

    def finish(self) -> int:
        self.stop.set()
        self.join()
        deadline = time.monotonic() + 60
        # A publish made while the broker was away reports "not connected" but is queued,
        # and paho sends it after reconnecting.
        while not self.acked.issuperset(self.mids):
            assert time.monotonic() < deadline, "publisher could not deliver within 60 s"
            time.sleep(0.05)
        self.client.loop_stop()
        self.client.disconnect()
        return self.sent


def test_a_broker_restart_loses_nothing(pg_env, unique_name, private_broker):
    fixture = IngestFixture(
        ingest_settings(pg_env, MQTT_BROKER_PORT=str(private_broker.port)), unique_name
    )
    dps = create_datapoints(fixture.engine, fixture.connector_id, [f"s{i}" for i in range(5)])
    fixture.start()
    publisher = SteadyPublisher(private_broker.port, [fixture.topic(dp) for dp in dps], rate=200)
    try:
        publisher.start()
        wait_for(lambda: count_rows(fixture.engine, t.datapoint_value) > 100)
        private_broker.stop()
        time.sleep(2)
        private_broker.start()
        back, published_before = Stopwatch(), publisher.sent
        wait_for(
            lambda: count_rows(fixture.engine, t.datapoint_value) >= published_before, timeout=60
        )
        caught_up_s = back.seconds()
        time.sleep(2)
        sent = publisher.finish()
        wait_for(lambda: count_rows(fixture.engine, t.datapoint_value) == sent, timeout=30)
        assert fixture.daemon.wait_subscribed(5)
        received = metric_total(fixture.daemon, "ingestd_messages_received", kind="value")
        record_fault_cost(
            "mosquitto restart (2 s down) at 200 msg/s",
            sent=sent,
            caught_up_s_after_broker_back=caught_up_s,
            delivered_twice=int(received - sent),
        )
    finally:
        fixture.stop()
        fixture.engine.dispose()


def test_a_database_outage_of_a_minute_loses_nothing(unique_name):
    server = PostgresProcess()
    server.start()
    server.create_database("outage")
    env = base_env(
        DJANGOAPIDB_HOST="127.0.0.1",
        DJANGOAPIDB_PORT=str(server.port),
        DJANGOAPIDB_USER="postgres",
        DJANGOAPIDB_DBNAME="outage",
    )
    settings = ingest_settings(env)
    engine = create_sqlalchemy_engine(settings)
    migrate(engine)
    engine.dispose()
    fixture = IngestFixture(settings, unique_name)
    dps = create_datapoints(fixture.engine, fixture.connector_id, [f"s{i}" for i in range(5)])
    fixture.start()
    publisher = SteadyPublisher(MQTT_PORT, [fixture.topic(dp) for dp in dps], rate=50)
    try:
        publisher.start()
        wait_for(lambda: count_rows(fixture.engine, t.datapoint_value) > 20)
        fixture.engine.dispose()
        server.stop()
        time.sleep(OUTAGE_S)
        held = fixture.daemon.inbox.depth()
        server.start()
        back, published_before = Stopwatch(), publisher.sent
        wait_for(
            lambda: count_rows(fixture.engine, t.datapoint_value) >= published_before, timeout=60
        )
        caught_up_s = back.seconds()
        sent = publisher.finish()
        wait_for(lambda: count_rows(fixture.engine, t.datapoint_value) == sent, timeout=60)
        received = metric_total(fixture.daemon, "ingestd_messages_received", kind="value")
        record_fault_cost(
            f"PostgreSQL stopped for {OUTAGE_S:g} s, then started, at 50 msg/s",
            sent=sent,
            held_unacknowledged=held,
            caught_up_s_after_database_back=caught_up_s,
            delivered_twice=int(received - sent),
        )
        # What arrived during the outage was held, not dropped.
        assert held >= OUTAGE_S * 50 * 0.8
        # Recovery takes seconds, not a back-off as long as the outage (RECONNECT_WINDOW_S).
        assert caught_up_s < 15
        with fixture.engine.connect() as c:
            assert (
                c.execute(
                    text("SELECT count(DISTINCT value_num) FROM datapoint_value")
                ).scalar_one()
                == sent
            )
    finally:
        fixture.stop()
        fixture.engine.dispose()
        server.remove()
        drop_session(MQTT_HOST, MQTT_PORT, settings.ingestd_client_id)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_stopped_ingestd_loses_nothing_acknowledged(pg_env, unique_name, signum):
    """SIGTERM: what is held is committed and acknowledged before a clean exit. SIGKILL:
    what was not committed was not acknowledged either, and comes again. Either way a new
    ingestd with the same client id ends up with every message."""
    settings = ingest_settings(pg_env)
    fixture = IngestFixture(settings, unique_name)
    dps = create_datapoints(fixture.engine, fixture.connector_id, [f"s{i}" for i in range(10)])
    env = {**os.environ, **pg_env, "INGESTD_CLIENT_ID": settings.ingestd_client_id}
    daemon = IngestdProcess(env)
    load = SteadyPublisher(MQTT_PORT, [fixture.topic(dp) for dp in dps], rate=500)
    try:
        load.start()
        wait_for(lambda: count_rows(fixture.engine, t.datapoint_value) > 200)
        exit_code = daemon.signal(signum)
        assert exit_code == (0 if signum == signal.SIGTERM else -signal.SIGKILL)
        stored_while_down = count_rows(fixture.engine, t.datapoint_value)
        if signum == signal.SIGTERM:
            # Before any restart could fill them in: what ingestd took in was committed
            # before it exited, by its own final record and by the rows themselves.
            record = _stop_record(daemon.lines)
            assert record["flushed"] == "True" and record["held"] == "0", record
            assert int(record["received"]) == int(record["stored"]) == stored_while_down
        time.sleep(1)
        sent = load.finish()
        assert stored_while_down < sent  # some arrived while it was down
        metrics_port = free_port()
        restarted = Stopwatch()
        daemon = IngestdProcess({**env, "INGESTD_METRICS_PORT": str(metrics_port)})
        wait_for(lambda: count_rows(fixture.engine, t.datapoint_value) == sent, timeout=30)
        received = scrape_total(metrics_port, "ingestd_messages_received")
        # Stored before the stop, yet delivered again: committed but not yet acknowledged.
        delivered_again = int(received - (sent - stored_while_down))
        record_fault_cost(
            f"{signal.Signals(signum).name} of ingestd at 500 msg/s",
            sent=sent,
            all_stored_s_after_restart=restarted.seconds(),
            delivered_again_after_restart=delivered_again,
        )
        if signum == signal.SIGTERM:
            assert delivered_again == 0  # every commit was acknowledged before the exit
    finally:
        daemon.signal(signal.SIGTERM)
        fixture.engine.dispose()
        drop_session(MQTT_HOST, MQTT_PORT, settings.ingestd_client_id)


def _stop_record(lines: list[str]) -> dict[str, str]:
    """The key=value fields of ingestd's last `ingestd_stopped` log line."""
    stopped = [line for line in lines if "ingestd_stopped" in line]
    assert stopped, "".join(lines[-20:])
    return dict(re.findall(r"(\w+)=(\S+)", stopped[-1]))


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 3 MiB tmpfs that the test can fill and then grow (needs root, as in CI)."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_full_disk_holds_messages_until_there_is_room_again(unique_name, small_tmpfs):
    env = base_env(BEMCOM_DATA_DIR=str(small_tmpfs / "data"))
    settings = ingest_settings(env)
    engine = create_sqlalchemy_engine(settings)
    migrate(engine)
    engine.dispose()
    fixture = IngestFixture(settings, unique_name)
    dps = create_datapoints(fixture.engine, fixture.connector_id, [f"s{i}" for i in range(10)])
    fixture.start()
    try:
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            # 400 values of 20 kB: 8 MB, which cannot fit in 3 MiB.
            filler = b'{"value": "%s", "timestamp": %d}'
            for i in range(400):
                client.publish(
                    fixture.topic(dps[i % 10]), filler % (b"x" * 20_000, T0 - 10_000 + i), qos=1
                ).wait_for_publish(10)
        wait_for(lambda: _errors(fixture.daemon, "transient") > 0, timeout=30)
        held_while_full = count_rows(fixture.engine, t.datapoint_value)
        time.sleep(1)
        assert count_rows(fixture.engine, t.datapoint_value) == held_while_full  # stuck, not lost
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
        room = Stopwatch()
        wait_for(lambda: count_rows(fixture.engine, t.datapoint_value) == 400, timeout=60)
        record_fault_cost(
            "SQLite disk full (3 MiB tmpfs, 8 MB of values), then grown",
            sent=400,
            held_while_full=400 - held_while_full,
            all_stored_s_after_room=room.seconds(),
        )
    finally:
        fixture.stop()
        fixture.engine.dispose()
        drop_session(MQTT_HOST, MQTT_PORT, settings.ingestd_client_id)


def _errors(daemon, kind: str) -> float:
    return metric_total(daemon, "ingestd_database_errors", type=kind)
