"""`python -m deploy.run` (`make run`): the whole service on one machine, with demo data.

Migrates the SQLite database under ./data (or the configured PostgreSQL), makes sure an admin
account exists, finds or starts an MQTT broker, starts ingestd, readapi and the demo
connector as child processes, activates the demo's datapoints, and prints where to go.
Ctrl-C (or SIGTERM) stops everything: the demo first, the broker last.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import structlog

from deploy.accounts import Credentials, ensure_admin, reset_launcher_account
from deploy.broker import EmbeddedBroker, broker_answers, find_mosquitto
from deploy.demo_setup import activate_demo_datapoints
from deploy.processes import Supervisor, wait_until
from schema.database import create_sqlalchemy_engine
from schema.log_setup import configure_logging
from schema.migrate import migrate
from schema.settings import Settings, SettingsError, load_settings

log = structlog.get_logger("deploy.run")

DEMO_CONNECTOR = "demo-building"
# What `make run` changes from the service's defaults, unless the environment sets it. A
# newcomer wants to see every page; production defaults stay off (README of the original).
LAUNCHER_DEFAULTS = {
    "ACTIVATE_HISTORY_EXTENSION": "TRUE",
    "ACTIVATE_CONTROL_EXTENSION": "TRUE",
    # A developer's laptop may sit on a café's network: only this machine reaches readapi
    # unless BEMCOM_HTTP_HOST says otherwise (containers and systemd listen on every interface).
    "BEMCOM_HTTP_HOST": "127.0.0.1",
}


class StopRequested(Exception):
    pass


def _raise_stop(_signum, _frame) -> None:
    raise StopRequested


def child_environment(environ: dict[str, str]) -> dict[str, str]:
    env = dict(environ)
    for name, value in LAUNCHER_DEFAULTS.items():
        if not env.get(name, "").strip():
            env[name] = value
    return env


def choose_broker(
    settings: Settings, configured: bool, env: dict[str, str]
) -> tuple[str, int, EmbeddedBroker | None]:
    """(host, port, embedded broker or None). Raises BrokerMissing with install hints."""
    if configured:
        host, port = settings.mqtt_broker_host, settings.mqtt_broker_port
        if not broker_answers(host, port):
            # Not fatal: ingestd and readapi reconnect once the broker is up.
            log.warning("broker_not_answering", host=host, port=port)
        return host, port, None
    port = settings.mqtt_broker_port
    if broker_answers("localhost", port):
        return "localhost", port, None
    broker = EmbeddedBroker(
        find_mosquitto(env.get("PATH", os.defpath)),
        Path(settings.data_dir) / "mosquitto",
        port,
    )
    broker.start()
    return "127.0.0.1", port, broker


def check_ports_free(settings: Settings) -> None:
    """Fail before starting anything when a port we serve is taken (another `make run`?)."""
    ports = [("BEMCOM_HTTP_PORT", settings.http_port)]
    if settings.ingestd_metrics_port:
        ports.append(("INGESTD_METRICS_PORT", settings.ingestd_metrics_port))
    for variable, port in ports:
        if broker_answers("127.0.0.1", port, timeout=0.5):
            raise RuntimeError(
                f"something already listens on port {port} (another `make run`?). "
                f"Stop it, or choose another port: {variable}={port + 1} make run"
            )


def banner(settings: Settings, admin: Credentials, broker: str, ids: dict[str, int]) -> str:
    base = f"http://localhost:{settings.http_port}{settings.root_path}"
    if admin.password is None:
        login = (
            f"{admin.username} (created earlier; reset its password with "
            f"`.venv/bin/python -m readapi createuser {admin.username} --superuser`)"
        )
    elif admin.generated:
        login = f"{admin.username} / {admin.password}   (generated now, shown only this once)"
    else:
        login = f"{admin.username} (password from DJANGO_SUPERUSER_PASSWORD)"
    database = (
        f"PostgreSQL {settings.db_host}:{settings.db_port}/{settings.db_name}"
        if settings.uses_postgres
        else f"SQLite {settings.sqlite_path}"
    )
    actuator = ids.get("room_setpoint")
    user = admin.username
    secret = admin.password if admin.generated else "PASSWORD"
    return "\n".join(
        [
            "",
            "BEMCom API is running.",
            f"  REST API and Swagger UI  {base}/",
            f"  OpenAPI document         {base}/schema/",
            f"  Admin UI                 {base}/admin/",
            f"  Log in as                {login}",
            f"  Database                 {database}",
            f"  MQTT broker              {broker}",
            f"  Demo connector           '{DEMO_CONNECTOR}' sends simulated values every 5 s",
            "  Try:",
            f"    curl -u {user}:{secret} {base}/datapoint/last_value/",
            f"    curl -u {user}:{secret} -H 'Content-Type: application/json' "
            f'-d \'{{"value": "23.5", "timestamp": {time.time_ns() // 1_000_000}}}\' '
            f"{base}/datapoint/{actuator}/value/",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


def run(environ: dict[str, str]) -> int:
    env = child_environment(environ)
    settings = load_settings(env)
    configure_logging(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is noise
    engine = create_sqlalchemy_engine(settings)
    migrate(engine, timescaledb=settings.timescaledb)
    engine.dispose()
    log.info("migrated", postgres=settings.uses_postgres)
    check_ports_free(settings)

    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    supervisor = Supervisor(env)
    broker: EmbeddedBroker | None = None
    try:
        admin = ensure_admin(settings, env)
        launcher = reset_launcher_account(env)
        configured = bool(environ.get("MQTT_BROKER_HOST", "").strip())
        host, port, broker = choose_broker(settings, configured, env)
        env["MQTT_BROKER_HOST"], env["MQTT_BROKER_PORT"] = host, str(port)
        where = f"embedded mosquitto on {host}:{port}" if broker else f"{host}:{port}"
        log.info("broker", at=where)

        supervisor.start_module("ingestd", "ingestd")
        supervisor.start_module("readapi", "readapi")
        base_url = f"http://{settings.http_local_address}:{settings.http_port}{settings.root_path}"
        client = httpx.Client(
            base_url=base_url, auth=(launcher.username, launcher.password or ""), timeout=10
        )
        wait_until(lambda: _answers(client, "/health/live"), 60, supervisor, "waiting for readapi")
        supervisor.start_module("demo", "demo", "--name", DEMO_CONNECTOR)
        ids = activate_demo_datapoints(client, DEMO_CONNECTOR)
        client.close()
        print(banner(settings, admin, where, ids), flush=True)
        while True:
            dead = supervisor.first_exited()
            if dead is not None:
                log.error("process_exited", process=dead.name, code=dead.exit_code())
                return 1
            time.sleep(0.5)
    except StopRequested:
        log.info("stopping")
        return 0
    finally:
        # A second Ctrl-C while stopping must not leave orphans behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        if broker is not None:
            broker.stop()
            log.info("stopped", process="mosquitto")


def _answers(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    try:
        return run(dict(os.environ))
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # BrokerMissing included: its message says what to do
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
