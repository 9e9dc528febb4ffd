"""The container health check of ingestd (`python -m deploy.healthcheck ingestd`) against a
real ingestd: healthy while connected to broker and database, unhealthy (naming which) when
either is away, healthy again when it is back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import admin_connect
from tests.deploy.service_processes import REPO, fresh_postgres_env, ingestd, poll
from tests.support.broker import MosquittoProcess


def healthcheck(metrics_url: str) -> subprocess.CompletedProcess:
    port = metrics_url.split(":")[2].split("/")[0]
    return subprocess.run(
        [sys.executable, "-m", "deploy.healthcheck", "ingestd"],
        cwd=REPO,
        env={**os.environ, "INGESTD_METRICS_PORT": port},
        capture_output=True,
        text=True,
        timeout=30,
    )


def healthy(metrics_url: str) -> bool:
    return healthcheck(metrics_url).returncode == 0


def unhealthy_because(metrics_url: str, reason: str) -> bool:
    done = healthcheck(metrics_url)
    return done.returncode == 1 and reason in done.stderr


def test_unhealthy_while_the_broker_is_away(sqlite_env, tmp_path: Path):
    broker = MosquittoProcess(tmp_path / "mosquitto")
    broker.start()
    env = {**sqlite_env, "MQTT_BROKER_PORT": str(broker.port)}
    try:
        with ingestd(env, tmp_path / "ingestd.log") as (_process, url):
            poll(lambda: healthy(url), what="healthy with broker and database")
            broker.stop()
            poll(
                lambda: unhealthy_because(url, "not connected to the MQTT broker"),
                what="unhealthy without the broker",
            )
            done = healthcheck(url)
            assert "ingestd_mqtt_connected = 0" in done.stderr, done.stderr
            assert "database" not in done.stderr, done.stderr  # only what is wrong is named
            broker.start()
            poll(lambda: healthy(url), what="healthy again once the broker is back")
    finally:
        broker.stop()


def test_unhealthy_while_the_database_refuses_connections(tmp_path: Path):
    with fresh_postgres_env() as env, ingestd(env, tmp_path / "ingestd.log") as (_process, url):
        name = env["DJANGOAPIDB_DBNAME"]
        poll(lambda: healthy(url), what="healthy with broker and database")
        with admin_connect() as admin:
            # The database is "away" for ingestd: no new connections, existing ones cut.
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        try:
            poll(
                lambda: unhealthy_because(url, "cannot reach the database"),
                what="unhealthy without the database",
            )
        finally:
            with admin_connect() as admin:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        poll(lambda: healthy(url), what="healthy again once the database is back")


def test_unhealthy_when_the_metrics_say_nothing(tmp_path: Path):
    # A port that answers with something else than ingestd's gauges is not healthy either.
    from deploy.healthcheck import ingestd_problems

    assert ingestd_problems("") == [
        "ingestd is not connected to the MQTT broker (ingestd_mqtt_connected = missing)",
        "ingestd cannot reach the database (ingestd_database_connected = missing)",
    ]
    ready_zero = "ingestd_mqtt_connected 1\ningestd_database_connected 1\ningestd_ready 0\n"
    assert ingestd_problems(ready_zero) == ["ingestd reports it is not ready (ingestd_ready = 0)"]
