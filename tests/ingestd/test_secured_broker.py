"""ingestd against a broker that wants TLS and a password: values stored through its fast
client over TLS, a clean stop over TLS, and each refusal a clear exit 2 naming the setting."""

from __future__ import annotations

import json
import os
import secrets
import signal

from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings
from tests.ingestd.conftest import IngestdProcess
from tests.support.ingest import create_connector, create_datapoints, value_rows, wait_for
from tests.support.secured_broker import Secured, assert_refused, run_refused, secured

__all__ = ["secured"]
COUNT = 1000


def test_ingestd_stores_values_over_tls_with_a_password(db_env, unique_name, secured: Secured):
    env = {
        **os.environ,
        **db_env,
        **secured.env(),
        "INGESTD_CLIENT_ID": f"ingestd-tls-{secrets.token_hex(4)}",
    }
    engine = create_sqlalchemy_engine(load_settings(env))
    try:
        connector_id = create_connector(engine, unique_name)
        sensors = create_datapoints(engine, connector_id, ["t1", "t2"])
        ingestd = IngestdProcess(env)
        client = secured.client()
        try:
            # Enough that TLS records carry many packets each (the fast client's chunked reads).
            infos = [
                client.publish(
                    f"{unique_name}/messages/{sensor}/value",
                    json.dumps({"value": n + 0.5, "timestamp": 1_700_000_000_000 + n}),
                    qos=1,
                )
                for n in range(COUNT)
                for sensor in sensors
            ]
            for info in infos:
                info.wait_for_publish(30)
            for sensor in sensors:
                wait_for(lambda s=sensor: len(value_rows(engine, s)) == COUNT, timeout=30)
            assert [row[1] for row in value_rows(engine, sensors[1])] == [
                n + 0.5 for n in range(COUNT)
            ]
        finally:
            client.disconnect()
            client.loop_stop()
            # The clean stop's drain (fast_client._sock_close) now runs on a TLS socket too.
            code = ingestd.signal(signal.SIGTERM)
        log = "".join(ingestd.lines)
        assert code == 0, log
        assert "Traceback" not in log, log
    finally:
        engine.dispose()


def test_a_ca_that_did_not_sign_the_broker_exits_2(sqlite_env, secured: Secured):
    env = {**sqlite_env, **secured.env(), "MQTT_BROKER_CA_FILE": str(secured.other_ca)}
    assert_refused(run_refused("ingestd", env), "MQTT_BROKER_CA_FILE")


def test_a_wrong_password_exits_2(db_env, secured: Secured):
    env = {**db_env, **secured.env(password="wrong")}
    assert_refused(run_refused("ingestd", env), "MQTT_BROKER_PASSWORD")


def test_anonymous_is_refused_with_exit_2(sqlite_env, secured: Secured):
    assert_refused(
        run_refused("ingestd", {**sqlite_env, **secured.env(user=None)}), "MQTT_BROKER_USERNAME"
    )


def test_an_unreadable_ca_file_exits_2(sqlite_env, secured: Secured, tmp_path):
    env = {**sqlite_env, **secured.env(), "MQTT_BROKER_CA_FILE": str(tmp_path / "missing.crt")}
    assert_refused(run_refused("ingestd", env), "MQTT_BROKER_CA_FILE")
