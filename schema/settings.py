"""The service's settings: read once from the environment, then passed down.

The variable names and defaults are the Django service's (see the seed README), so an existing
docker-compose file works unchanged. New options carry a BEMCOM_, INGESTD_ or READAPI_ prefix.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path

import msgspec

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A variable of the environment holds a value the service cannot use."""

    def __init__(self, variable: str, expected: str, got: str) -> None:
        super().__init__(f"{variable} must be {expected}, got {got!r}")
        self.variable = variable


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    mqtt_broker_host: str = "localhost"
    mqtt_broker_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # TLS to the broker; verification on unless mqtt_broker_tls_insecure (tests only).
    mqtt_broker_tls: bool = False
    mqtt_broker_ca_file: str | None = None
    mqtt_broker_cert_file: str | None = None
    mqtt_broker_key_file: str | None = None
    mqtt_broker_tls_insecure: bool = False
    activate_control_extension: bool = False
    activate_history_extension: bool = False
    loglevel: str = "INFO"
    django_debug: bool = False
    django_admins: list = msgspec.field(default_factory=list)
    django_secret_key: str | None = None
    django_allowed_hosts: list[str] = msgspec.field(default_factory=lambda: ["localhost"])
    django_superuser_username: str | None = None
    django_superuser_password: str | None = None
    django_superuser_email: str | None = None
    db_host: str | None = None
    db_port: int = 5432
    db_user: str = "bemcom"
    db_password: str = "bemcom"
    db_name: str = "bemcom"
    n_mtd_write_threads: int = 1
    n_worker_processes: int = 1
    root_path: str = ""
    https_only: bool = False
    data_dir: str = "data"
    # Every interface, as in a container or under systemd; `make run` asks for 127.0.0.1.
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    ingestd_metrics_port: int = 9464
    ingestd_client_id: str = "bemcom-ingestd"
    ingestd_share_group: str | None = None
    ingestd_receive_maximum: int = 20000
    ingestd_max_batch: int = 5000
    ingestd_max_payload_bytes: int = 1_048_576
    # A restore PUTs 10,000 messages at a time (a few MB); room for large schedules too.
    readapi_max_body_bytes: int = 33_554_432
    readapi_header_timeout_seconds: int = 20
    readapi_body_timeout_seconds: int = 120
    # 0 turns a limit off.
    readapi_login_max_failures: int = 10
    readapi_login_max_failures_per_ip: int = 100
    readapi_login_throttle_seconds: int = 300
    # uvicorn's own variable: the peers whose X-Forwarded-For/-Proto are believed. Behind a
    # reverse proxy elsewhere it must name the proxy, or every client has its address.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    log_json: bool | None = None
    # Set by readapi for its workers (prometheus_client reads it too); None: one process.
    prometheus_multiproc_dir: str | None = None
    # Answer values exactly as sent instead of as the original answers them (issue 13).
    exact_values: bool = False
    # auto: hypertables where TimescaleDB is installed and preloaded; off: plain tables.
    timescaledb: str = "auto"

    @property
    def uses_postgres(self) -> bool:
        return bool(self.db_host)

    @property
    def http_local_address(self) -> str:
        """Where this machine reaches readapi, as a URL's host: loopback when it listens on
        every interface."""
        if self.http_host in ("0.0.0.0", "::"):
            return "127.0.0.1"
        return f"[{self.http_host}]" if ":" in self.http_host else self.http_host

    @property
    def sqlite_path(self) -> Path:
        return Path(self.data_dir) / "db.sqlite3"


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().upper()
    if value in ("TRUE", "1", "YES"):
        return True
    if value in ("FALSE", "0", "NO"):
        return False
    raise SettingsError(name, "TRUE or FALSE", raw)


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(name, "an integer", raw) from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise SettingsError(name, f"an integer {bounds}", raw)
    return value


def _str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip()


def _json_list(env: Mapping[str, str], name: str, default: list) -> list:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise SettingsError(name, "a JSON list such as '[\"example.com\"]'", raw) from None
    if not isinstance(value, list):
        raise SettingsError(name, "a JSON list such as '[\"example.com\"]'", raw)
    return value


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def _listen_host(env: Mapping[str, str], name: str, default: str) -> str:
    """An address to listen on: an IP address (IPv4 or IPv6) or a host name."""
    value = _str(env, name, default) or default
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOST_NAME.match(value):
            raise SettingsError(
                name, "an IP address such as 127.0.0.1 or 0.0.0.0, or a host name", env[name]
            ) from None
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (case-insensitive); the first is the default."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return choices[0]
    value = raw.strip().lower()
    if value not in choices:
        raise SettingsError(name, " or ".join(choices), raw)
    return value


def _root_path(env: Mapping[str, str]) -> str:
    # The original takes "bemcom/"; Litestar wants "/bemcom" and "" for the root.
    raw = (env.get("ROOT_PATH") or "").strip().strip("/")
    return f"/{raw}" if raw else ""


def _forwarded_allow_ips(env: Mapping[str, str]) -> str:
    """uvicorn's FORWARDED_ALLOW_IPS: "*", or addresses and networks separated by commas."""
    raw = _str(env, "FORWARDED_ALLOW_IPS", "127.0.0.1,::1") or ""
    entries = [entry.strip() for entry in raw.split(",")]
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(
                "FORWARDED_ALLOW_IPS",
                "'*' or IP addresses or networks separated by commas, e.g. '10.0.0.5,::1'",
                raw,
            ) from None
    return ",".join(entries)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build the settings from an environment; raise SettingsError naming a bad variable."""
    loglevel = (_str(env, "LOGLEVEL", "INFO") or "INFO").upper()
    if loglevel not in LOG_LEVELS:
        raise SettingsError("LOGLEVEL", "one of " + ", ".join(LOG_LEVELS), env["LOGLEVEL"])
    allowed_hosts = _json_list(env, "DJANGO_ALLOWED_HOSTS", ["localhost"])
    if not all(isinstance(h, str) for h in allowed_hosts):
        raise SettingsError(
            "DJANGO_ALLOWED_HOSTS", "a JSON list of strings", env["DJANGO_ALLOWED_HOSTS"]
        )
    log_json_raw = _str(env, "BEMCOM_LOG_JSON")
    return Settings(
        mqtt_broker_host=_str(env, "MQTT_BROKER_HOST", "localhost") or "localhost",
        mqtt_broker_port=_int(env, "MQTT_BROKER_PORT", 1883, 1, 65535),
        mqtt_username=_str(env, "MQTT_BROKER_USERNAME"),
        mqtt_password=_str(env, "MQTT_BROKER_PASSWORD"),
        mqtt_broker_tls=_bool(env, "MQTT_BROKER_TLS", False),
        mqtt_broker_ca_file=_str(env, "MQTT_BROKER_CA_FILE"),
        mqtt_broker_cert_file=_str(env, "MQTT_BROKER_CERT_FILE"),
        mqtt_broker_key_file=_str(env, "MQTT_BROKER_KEY_FILE"),
        mqtt_broker_tls_insecure=_bool(env, "MQTT_BROKER_TLS_INSECURE", False),
        activate_control_extension=_bool(env, "ACTIVATE_CONTROL_EXTENSION", False),
        activate_history_extension=_bool(env, "ACTIVATE_HISTORY_EXTENSION", False),
        loglevel=loglevel,
        django_debug=_bool(env, "DJANGO_DEBUG", False),
        django_admins=_json_list(env, "DJANGO_ADMINS", []),
        django_secret_key=_str(env, "DJANGO_SECRET_KEY"),
        django_allowed_hosts=allowed_hosts,
        django_superuser_username=_str(env, "DJANGO_SUPERUSER_USERNAME"),
        django_superuser_password=_str(env, "DJANGO_SUPERUSER_PASSWORD"),
        django_superuser_email=_str(env, "DJANGO_SUPERUSER_EMAIL"),
        db_host=_str(env, "DJANGOAPIDB_HOST"),
        db_port=_int(env, "DJANGOAPIDB_PORT", 5432, 1, 65535),
        db_user=_str(env, "DJANGOAPIDB_USER", "bemcom") or "bemcom",
        db_password=_str(env, "DJANGOAPIDB_PASSWORD", "bemcom") or "bemcom",
        db_name=_str(env, "DJANGOAPIDB_DBNAME", "bemcom") or "bemcom",
        n_mtd_write_threads=_int(env, "N_MTD_WRITE_THREADS", 1, minimum=1),
        n_worker_processes=_int(env, "N_WORKER_PROCESSES", 1, minimum=1),
        root_path=_root_path(env),
        https_only=_bool(env, "HTTPS_ONLY", False),
        data_dir=_str(env, "BEMCOM_DATA_DIR", "data") or "data",
        http_host=_listen_host(env, "BEMCOM_HTTP_HOST", "0.0.0.0"),
        http_port=_int(env, "BEMCOM_HTTP_PORT", 8080, minimum=1),
        ingestd_metrics_port=_int(env, "INGESTD_METRICS_PORT", 9464, minimum=0),
        ingestd_client_id=_str(env, "INGESTD_CLIENT_ID", "bemcom-ingestd") or "bemcom-ingestd",
        ingestd_share_group=_str(env, "INGESTD_SHARE_GROUP"),
        ingestd_receive_maximum=_int(env, "INGESTD_RECEIVE_MAXIMUM", 20000, 1, 65535),
        ingestd_max_batch=_int(env, "INGESTD_MAX_BATCH", 5000, minimum=1),
        ingestd_max_payload_bytes=_int(env, "INGESTD_MAX_PAYLOAD_BYTES", 1_048_576, minimum=64),
        readapi_max_body_bytes=_int(env, "READAPI_MAX_BODY_BYTES", 33_554_432, minimum=1024),
        readapi_header_timeout_seconds=_int(env, "READAPI_HEADER_TIMEOUT_SECONDS", 20, minimum=1),
        readapi_body_timeout_seconds=_int(env, "READAPI_BODY_TIMEOUT_SECONDS", 120, minimum=1),
        readapi_login_max_failures=_int(env, "READAPI_LOGIN_MAX_FAILURES", 10),
        readapi_login_max_failures_per_ip=_int(env, "READAPI_LOGIN_MAX_FAILURES_PER_IP", 100),
        readapi_login_throttle_seconds=_int(
            env, "READAPI_LOGIN_THROTTLE_SECONDS", 300, minimum=1, maximum=86_400
        ),
        forwarded_allow_ips=_forwarded_allow_ips(env),
        log_json=None if log_json_raw is None else _bool(env, "BEMCOM_LOG_JSON", False),
        prometheus_multiproc_dir=_str(env, "PROMETHEUS_MULTIPROC_DIR"),
        exact_values=_bool(env, "BEMCOM_EXACT_VALUES", False),
        timescaledb=_choice(env, "BEMCOM_TIMESCALEDB", ("auto", "off")),
    )
