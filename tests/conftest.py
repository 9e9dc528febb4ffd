"""Shared fixtures: real PostgreSQL, real SQLite files and a real Mosquitto.

PostgreSQL comes in two flavours, each a migrated template database built once per run (each
test gets its own copy of it):
- `timescaledb`: the extension created, the history tables hypertables, readapi buckets with
  time_bucket; the production setup (TimescaleDB installed and preloaded on the test server);
- `plain`: BEMCOM_TIMESCALEDB=off, plain tables, readapi buckets with date_bin.

`pg_env` runs a test on both flavours (ids `postgres-timescaledb`, `postgres-plain`); `db_env`
on both and on SQLite (`sqlite`). Both flavours cost twice, so they are kept for tests where
the database path differs: migrations, storage, SQL reads, backup. Tests whose database work
is the same on both and that cost much (real readapi/ingestd processes, the browser, faults,
the admin UI, login and permission checks) run on TimescaleDB only: mark a test or module
`@pytest.mark.timescaledb_only`, or list its file or directory in TIMESCALEDB_ONLY below (for
files written before the flavours existed). `pg_template` is the TimescaleDB template, for
tests that copy it themselves; `pg_plain_template` the other one.

Where the test server has no usable TimescaleDB (a developer's machine without it), the
`timescaledb` flavour skips, and so fails under CI (below).

CI: with the environment variable CI set (CI=true, as .ci/run and CI services set it), a
skipped test is reported as failed, because a test that skips there proves nothing, e.g. a
missing systemd-analyze or chromium. A skip that is right even in CI carries
`@pytest.mark.skip_allowed_in_ci`.

Mosquitto: tests share the machine's broker and keep apart by unique names; tests that stop
the broker start a private one (`private_broker`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
PLAIN_TEMPLATE_DB = f"bemcom_test_plain_template_{os.getpid()}"

PG_FLAVOURS = ("timescaledb", "plain")
# BEMCOM_TIMESCALEDB of each flavour.
_TIMESCALEDB_SETTING = {"timescaledb": "auto", "plain": "off"}
# Files and directories (relative to the repository) whose PostgreSQL tests run on
# TimescaleDB only: their database work is the same on both flavours, and they are slow.
TIMESCALEDB_ONLY = (
    "tests/admin/",
    "tests/backup/test_clients_round_trip.py",
    "tests/backup/test_restore_limits.py",
    "tests/deploy/",
    "tests/ingestd/test_connector_template_values.py",
    "tests/ingestd/test_containment.py",
    "tests/ingestd/test_control_plane.py",
    "tests/ingestd/test_hostile_stream.py",
    "tests/ingestd/test_refused_names.py",
    "tests/ingestd/test_faults.py",
    "tests/ingestd/test_metrics.py",
    "tests/ingestd/test_scale_out.py",
    "tests/readapi/test_flags_and_permissions.py",
    "tests/readapi/test_hostile_bodies.py",
    "tests/readapi/test_hostile_login.py",
    "tests/readapi/test_hostile_names.py",
    "tests/readapi/test_hostile_process.py",
    "tests/readapi/test_hostile_requests.py",
    "tests/readapi/test_hostile_token_storage.py",
    "tests/readapi/test_mqtt.py",
    "tests/readapi/test_process.py",
    "tests/readapi/test_revocation.py",
    "tests/readapi/test_schemathesis.py",
)
REPO = Path(__file__).resolve().parents[1]


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


def pg_database_env(name: str, flavour: str = "timescaledb") -> dict[str, str]:
    """The environment of a database on the test server, for a flavour's settings."""
    return base_env(
        DJANGOAPIDB_HOST=PG_HOST,
        DJANGOAPIDB_PORT=str(PG_PORT),
        DJANGOAPIDB_USER=PG_USER,
        DJANGOAPIDB_DBNAME=name,
        BEMCOM_TIMESCALEDB=_TIMESCALEDB_SETTING[flavour],
    )


# ---------------------------------------------------------------------------------------
# Flavours: which tests run on which


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "timescaledb_only: run PostgreSQL fixtures on TimescaleDB only (conftest)"
    )
    config.addinivalue_line(
        "markers", "skip_allowed_in_ci(reason): this test may skip even when CI is set"
    )


def _timescaledb_only(metafunc: pytest.Metafunc) -> bool:
    if metafunc.definition.get_closest_marker("timescaledb_only"):
        return True
    try:
        relative = metafunc.definition.path.relative_to(REPO).as_posix()
    except ValueError:
        return False
    return any(relative.startswith(prefix) for prefix in TIMESCALEDB_ONLY)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    flavours = ("timescaledb",) if _timescaledb_only(metafunc) else PG_FLAVOURS
    ids = [f"postgres-{f}" for f in flavours]
    if "db_env" in metafunc.fixturenames:
        metafunc.parametrize("db_env", [*flavours, "sqlite"], ids=[*ids, "sqlite"], indirect=True)
    elif "pg_env" in metafunc.fixturenames:
        metafunc.parametrize("pg_env", flavours, ids=ids, indirect=True)


# ---------------------------------------------------------------------------------------
# PostgreSQL


def _close_to_connections(conn: psycopg.Connection, name: str) -> None:
    """Make a template copyable: CREATE DATABASE ... TEMPLATE fails while anyone is connected,
    and TimescaleDB's scheduler connects to every database with the extension. A database
    that allows no connections gets no scheduler."""
    conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    deadline = time.monotonic() + 30
    while True:
        connected = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
        if not connected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(connected)} sessions stay connected to {name}")
        time.sleep(0.1)


def copy_template(conn: psycopg.Connection, name: str, template: str) -> None:
    """CREATE DATABASE name TEMPLATE template. The templates here allow no connections, but
    a copy still retries while a session is connected (a template built by other code)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (template,),
            )
            time.sleep(0.1)


def _build_template(name: str, flavour: str) -> None:
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    settings = load_settings(pg_database_env(name, flavour))
    engine = create_sqlalchemy_engine(settings)
    try:
        migrate(engine, timescaledb=settings.timescaledb)
        with engine.connect() as connection:
            hypertables = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
            ).scalar_one()
            if hypertables:
                hypertables = connection.exec_driver_sql(
                    "SELECT count(*) FROM timescaledb_information.hypertables"
                ).scalar_one()
    finally:
        engine.dispose()
    with admin_connect() as conn:
        _close_to_connections(conn, name)
    if flavour == "timescaledb" and not hypertables:
        _drop(name)
        pytest.skip(
            "TimescaleDB is not installed and preloaded on the test server "
            "(CI runs ../shared/timescaledb/install.sh)"
        )
    assert flavour == "timescaledb" or not hypertables, "BEMCOM_TIMESCALEDB=off made hypertables"


def _drop(name: str) -> None:
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """The migrated TimescaleDB template (hypertables)."""
    _build_template(TEMPLATE_DB, "timescaledb")
    yield TEMPLATE_DB
    _databases.finish()  # no copy of it may still be in the making
    _drop(TEMPLATE_DB)


@pytest.fixture(scope="session")
def pg_plain_template() -> Iterator[str]:
    """The migrated plain PostgreSQL template (BEMCOM_TIMESCALEDB=off)."""
    _build_template(PLAIN_TEMPLATE_DB, "plain")
    yield PLAIN_TEMPLATE_DB
    _databases.finish()
    _drop(PLAIN_TEMPLATE_DB)


class _Databases:
    """Copies of the templates made ahead and dropped afterwards, on threads of their own, so
    no test waits for either: a copy takes up to a second and a drop up to several on a
    loaded machine. One spare copy per flavour is kept ready.

    Drops close the database to connections first: TimescaleDB's launcher would otherwise
    start the database's scheduler again while DROP ... WITH (FORCE) waits for it to go."""

    def __init__(self) -> None:
        # Two threads: a copy never waits behind a slow drop.
        self.executors: dict[str, ThreadPoolExecutor] = {}
        self.spares: dict[str, Future[str]] = {}

    def _submit(self, lane: str, work, *args) -> Future:
        if lane not in self.executors:
            self.executors[lane] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=lane)
        return self.executors[lane].submit(work, *args)

    @staticmethod
    def _create(template: str) -> str:
        name = f"bemcom_test_{secrets.token_hex(6)}"
        with admin_connect() as conn:
            copy_template(conn, name, template)
        return name

    @staticmethod
    def _drop(name: str) -> None:
        try:
            with admin_connect() as conn:
                conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        except psycopg.Error as error:
            print(f"could not drop test database {name}: {error}", file=sys.stderr)

    def take(self, template: str) -> str:
        """A fresh copy of `template`; the next one is started at once."""
        spare = self.spares.pop(template, None)
        name = None
        if spare is not None:
            try:
                name = spare.result(timeout=120)
            except (psycopg.Error, TimeoutError) as error:
                print(f"spare copy of {template} failed: {error}", file=sys.stderr)
        if name is None:
            name = self._create(template)
        self.spares[template] = self._submit("test-db-copy", self._create, template)
        return name

    def drop_later(self, name: str) -> None:
        self._submit("test-db-drop", self._drop, name)

    def finish(self) -> None:
        """Drop the spares and wait for every drop (at the end of the session)."""
        for spare in self.spares.values():
            with contextlib.suppress(psycopg.Error, TimeoutError):
                self.drop_later(spare.result(timeout=120))
        self.spares.clear()
        for executor in self.executors.values():
            executor.shutdown(wait=True)
        self.executors.clear()


_databases = _Databases()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _databases.finish()


def _pg_database(request: pytest.FixtureRequest, flavour: str) -> Iterator[dict[str, str]]:
    template = request.getfixturevalue(
        "pg_template" if flavour == "timescaledb" else "pg_plain_template"
    )
    name = _databases.take(template)
    try:
        yield pg_database_env(name, flavour)
    finally:
        _databases.drop_later(name)


@pytest.fixture
def pg_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Environment of a fresh, migrated PostgreSQL database for one test, on each flavour."""
    yield from _pg_database(request, getattr(request, "param", "timescaledb"))


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a fresh, migrated SQLite database for one test."""
    env = base_env(BEMCOM_DATA_DIR=str(tmp_path / "data"))
    engine = create_sqlalchemy_engine(load_settings(env))
    migrate(engine)
    engine.dispose()
    return env


@pytest.fixture
def db_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Each test using this runs on each PostgreSQL flavour and on SQLite."""
    backend = getattr(request, "param", "timescaledb")
    if backend == "sqlite":
        yield request.getfixturevalue("sqlite_env")
    else:
        yield from _pg_database(request, backend)


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


# ---------------------------------------------------------------------------------------
# CI: a skip is a failure


def ci_enabled() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_to_failure(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI ({reason}); CI must provide what this test needs, or the test "
        "carries @pytest.mark.skip_allowed_in_ci"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and ci_enabled()
        and item.get_closest_marker("skip_allowed_in_ci") is None
    ):
        _skip_to_failure(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if report.skipped and ci_enabled():
        _skip_to_failure(report)
