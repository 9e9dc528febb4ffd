"""TimescaleDB where it works, plain tables where it does not or is not wanted.

BEMCOM_TIMESCALEDB=auto|off; a server with the extension installed but not preloaded (a
private cluster started without shared_preload_libraries) migrates with plain tables and
says once how to preload it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from readapi.db import open_database
from schema.database import create_sqlalchemy_engine
from schema.settings import SettingsError, load_settings
from schema.tables import HISTORY_TABLES
from tests.conftest import base_env
from tests.support.postgres import PostgresProcess, timescaledb_library_installed


def _hypertables(env: dict[str, str]) -> set[str]:
    engine = create_sqlalchemy_engine(load_settings(env))
    try:
        with engine.connect() as connection:
            if not connection.execute(
                text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
            ).first():
                return set()
            return set(
                connection.execute(
                    text("SELECT hypertable_name FROM timescaledb_information.hypertables")
                ).scalars()
            )
    finally:
        engine.dispose()


def test_setting_is_auto_or_off():
    assert load_settings({}).timescaledb == "auto"
    assert load_settings({"BEMCOM_TIMESCALEDB": " OFF "}).timescaledb == "off"
    assert load_settings({"BEMCOM_TIMESCALEDB": "auto"}).timescaledb == "auto"
    with pytest.raises(SettingsError) as error:
        load_settings({"BEMCOM_TIMESCALEDB": "on"})
    assert error.value.variable == "BEMCOM_TIMESCALEDB"


def test_each_flavour_has_the_tables_and_buckets_it_claims(pg_env):
    """postgres-timescaledb: every history table a hypertable, readapi uses time_bucket;
    postgres-plain (BEMCOM_TIMESCALEDB=off on a server that has the extension): none."""
    timescale = pg_env["BEMCOM_TIMESCALEDB"] == "auto"
    assert _hypertables(pg_env) == (set(HISTORY_TABLES) if timescale else set())
    database = open_database(load_settings(pg_env))
    try:
        assert database.timescale is timescale
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def not_preloaded() -> Iterator[PostgresProcess]:
    if not timescaledb_library_installed():
        pytest.skip("TimescaleDB is not installed here (CI runs ../shared/timescaledb/install.sh)")
    server = PostgresProcess(timescaledb=False)
    server.start()
    yield server
    server.remove()


def _migrate_cli(env: dict[str, str]) -> tuple[subprocess.CompletedProcess, list[dict]]:
    done = subprocess.run(
        [sys.executable, "-m", "schema", "migrate"],
        env={**os.environ, **env, "BEMCOM_LOG_JSON": "TRUE", "LOGLEVEL": "INFO"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    events = []
    for line in done.stderr.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # alembic's own lines
    return done, events


def _server_env(server: PostgresProcess, name: str, **overrides: str) -> dict[str, str]:
    server.create_database(name)
    return base_env(
        DJANGOAPIDB_HOST="127.0.0.1",
        DJANGOAPIDB_PORT=str(server.port),
        DJANGOAPIDB_USER="postgres",
        DJANGOAPIDB_DBNAME=name,
        **overrides,
    )


def test_installed_but_not_preloaded_migrates_with_plain_tables_and_says_how_to_preload(
    not_preloaded,
):
    env = _server_env(not_preloaded, "auto_without_preload")
    done, events = _migrate_cli(env)
    assert done.returncode == 0, done.stderr
    warnings = [e for e in events if e.get("event") == "timescaledb_not_preloaded"]
    assert len(warnings) == 1, done.stderr
    assert warnings[0]["level"] == "warning"
    assert "shared_preload_libraries = 'timescaledb'" in warnings[0]["fix"]
    assert any(e.get("event") == "migrated" for e in events), done.stderr
    assert _hypertables(env) == set()
    database = open_database(load_settings(env))
    try:
        assert database.timescale is False  # readapi buckets with date_bin there
    finally:
        database.dispose()
    # Already migrated: nothing to do, nothing to say again.
    done, events = _migrate_cli(env)
    assert done.returncode == 0, done.stderr
    assert not [e for e in events if e.get("event") == "timescaledb_not_preloaded"]


def test_off_migrates_without_a_warning(not_preloaded):
    env = _server_env(not_preloaded, "off_without_preload", BEMCOM_TIMESCALEDB="off")
    done, events = _migrate_cli(env)
    assert done.returncode == 0, done.stderr
    assert not [e for e in events if e.get("event") == "timescaledb_not_preloaded"]
    assert any(e.get("event") == "migrated" for e in events), done.stderr
    assert _hypertables(env) == set()
