"""Shared fixtures: real PostgreSQL, real SQLite files and a real Mosquitto.

PostgreSQL: a migrated template database is built once per run; each test gets its own copy.
Mosquitto: tests share the machine's broker and keep apart by unique names; tests that stop
the broker start a private one (`private_broker`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from schema.database import create_sqlalchemy_engine
from schema.migrate import migrate
from schema.settings import Settings, load_settings
from tests.support.broker import MosquittoProcess

PG_HOST = os.environ.get("BEMCOM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BEMCOM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("BEMCOM_TEST_PG_USER", "postgres")
MQTT_HOST = os.environ.get("BEMCOM_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("BEMCOM_TEST_MQTT_PORT", "1883"))
TEMPLATE_DB = f"bemcom_test_template_{os.getpid()}"


def admin_connect() -> psycopg.Connection:
    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    )


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        "MQTT_BROKER_HOST": MQTT_HOST,
        "MQTT_BROKER_PORT": str(MQTT_PORT),
        "LOGLEVEL": "DEBUG",
        "BEMCOM_LOG_JSON": "FALSE",
        "ACTIVATE_HISTORY_EXTENSION": "TRUE",
        "ACTIVATE_CONTROL_EXTENSION": "TRUE",
        "INGESTD_METRICS_PORT": "0",
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    settings = load_settings(
        base_env(
            DJANGOAPIDB_HOST=PG_HOST,
            DJANGOAPIDB_PORT=str(PG_PORT),
            DJANGOAPIDB_USER=PG_USER,
            DJANGOAPIDB_DBNAME=TEMPLATE_DB,
        )
    )
    engine = create_sqlalchemy_engine(settings)
    migrate(engine)
    engine.dispose()
    yield TEMPLATE_DB
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')


@pytest.fixture
def pg_env(pg_template: str) -> Iterator[dict[str, str]]:
    """Environment of a fresh, migrated PostgreSQL database for one test."""
    name = f"bemcom_test_{secrets.token_hex(6)}"
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield base_env(
        DJANGOAPIDB_HOST=PG_HOST,
        DJANGOAPIDB_PORT=str(PG_PORT),
        DJANGOAPIDB_USER=PG_USER,
        DJANGOAPIDB_DBNAME=name,
    )
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a fresh, migrated SQLite database for one test."""
    env = base_env(BEMCOM_DATA_DIR=str(tmp_path / "data"))
    engine = create_sqlalchemy_engine(load_settings(env))
    migrate(engine)
    engine.dispose()
    return env


@pytest.fixture(params=["postgres", "sqlite"])
def db_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Each test using this runs once on PostgreSQL and once on SQLite."""
    return request.getfixturevalue("pg_env" if request.param == "postgres" else "sqlite_env")


@pytest.fixture
def settings(db_env: dict[str, str]) -> Settings:
    return load_settings(db_env)


@pytest.fixture
def unique_name() -> str:
    """A connector or controller name no other test (or earlier run) uses on the broker."""
    return f"test-{secrets.token_hex(5)}"


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A Mosquitto of the test's own, with persistence, which the test may stop and start."""
    broker = MosquittoProcess(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()
