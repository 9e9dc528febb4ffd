"""Two ingestd instances on an MQTT shared subscription split the stream: each message is
stored once and none is lost."""

from __future__ import annotations

from sqlalchemy import text

from schema import tables as t
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.ingestd.conftest import IngestFixture, drop_session, ingest_settings
from tests.support.ingest import (
    count_rows,
    create_datapoints,
    metric_total,
    publish_json,
    publisher,
    wait_for,
)

T0 = 1_795_840_275_000


def _stored(daemon) -> float:
    return metric_total(daemon, "ingestd_messages_stored")


def test_two_instances_split_a_shared_subscription(pg_env, unique_name):
    group = f"g{unique_name}"
    first = IngestFixture(ingest_settings(pg_env, INGESTD_SHARE_GROUP=group), unique_name)
    dps = create_datapoints(first.engine, first.connector_id, [f"s{i}" for i in range(20)])
    second_settings = ingest_settings(pg_env, INGESTD_SHARE_GROUP=group)
    second = IngestFixture(second_settings, unique_name, connector_id=first.connector_id)
    first.start()
    second.start()
    try:
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            for i in range(2000):
                client.publish(
                    first.topic(dps[i % 20]), b'{"value": %d, "timestamp": %d}' % (i, T0 + i), qos=1
                )
            for i in range(10):
                publish_json(
                    client,
                    f"{unique_name}/logs",
                    {"timestamp": T0 + i, "msg": f"line {i}", "level": 20},
                )
            wait_for(lambda: count_rows(first.engine, t.datapoint_value) == 2000, timeout=30)
            wait_for(lambda: count_rows(first.engine, t.connector_log_entry) == 10)
        # Each instance took part, and nothing was stored twice (the count would exceed the
        # 2,000 keys only as rewrites; the per-instance counters show the split).
        a, b = _stored(first.daemon), _stored(second.daemon)
        assert a > 0 and b > 0
        assert a + b == 2000 + 10
        with first.engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM connector_log_entry")).scalar_one() == 10
    finally:
        second.stop()
        first.stop()
        first.engine.dispose()
        second.engine.dispose()
        for settings in (first.settings, second_settings):
            drop_session(MQTT_HOST, MQTT_PORT, settings.ingestd_client_id)
