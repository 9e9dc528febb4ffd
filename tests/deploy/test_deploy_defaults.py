"""Safe deploy defaults (issue 11), checked for real as far as this machine allows.

- compose: no working default secret (its ${VAR:?} checks run here by a small interpolator
  written from the compose specification), broker on loopback, TimescaleDB pinned, ingestd's
  health check wired;
- the entrypoint's account step run twice against real databases with a change in between;
- the SQLite file and data directory owner-only, on real files.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update

from readapi.accounts import permissions_of
from readapi.passwords import hash_password, verify_password
from schema.database import connect_sqlite, create_sqlalchemy_engine
from schema.settings import load_settings
from schema.tables import auth_user
from tests.deploy.service_processes import fresh_postgres_env

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
REQUIRED_SECRETS = ("DJANGO_SECRET_KEY", "DJANGO_SUPERUSER_PASSWORD", "DJANGOAPIDB_PASSWORD")


class MissingVariable(Exception):
    pass


# Compose's interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?message}, ${NAME?message}; anything else after a $ is an error.
_TEMPLATE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<invalid>))"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("invalid") is not None:
            raise ValueError(f"invalid interpolation at {text[match.start() :][:40]!r}")
        name = match.group("named") or match.group("braced")
        op, arg = match.group("op"), match.group("arg")
        value = env.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-") and unset_or_empty:
            return arg
        if op in ("?", ":?") and unset_or_empty:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _TEMPLATE.sub(replace, text)


def interpolated(value, env: dict[str, str]):
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [interpolated(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolated(v, env) for k, v in value.items()}
    return value


def compose_with(env: dict[str, str]) -> dict:
    return interpolated(yaml.safe_load(COMPOSE.read_text()), env)


SECRETS = {name: f"{name.lower()}-value" for name in REQUIRED_SECRETS}


@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_compose_refuses_to_start_without_each_secret(missing):
    env = {name: value for name, value in SECRETS.items() if name != missing}
    with pytest.raises(MissingVariable, match=missing):
        compose_with(env)
    with pytest.raises(MissingVariable, match=missing):
        compose_with({**env, missing: ""})  # empty counts as missing (:?)


def test_compose_passes_the_secrets_through_and_has_no_other_default():
    compose = compose_with(SECRETS)
    services = compose["services"]
    for name in ("ingestd", "readapi"):
        env = services[name]["environment"]
        for secret in REQUIRED_SECRETS:
            assert env[secret] == SECRETS[secret], (name, secret)
    assert (
        services["timescaledb"]["environment"]["POSTGRES_PASSWORD"]
        == SECRETS["DJANGOAPIDB_PASSWORD"]
    )
    assert (
        services["grafana"]["environment"]["DJANGOAPIDB_PASSWORD"]
        == SECRETS["DJANGOAPIDB_PASSWORD"]
    )
    # No password-like variable has a default of its own anywhere in the file.
    text = COMPOSE.read_text()
    defaults = re.findall(r"\$\{([A-Z_]*(?:PASSWORD|SECRET)[A-Z_]*):?-([^}]*)\}", text)
    assert all(default == "" for _name, default in defaults), defaults
    # Values with a $ left over would mean an interpolation compose does not do.
    assert "${" not in yaml.safe_dump(compose)


def test_compose_publishes_the_broker_on_loopback_only():
    services = compose_with(SECRETS)["services"]
    for port in services["mosquitto"].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), port
    # Monitoring UIs likewise; ingestd's metrics port is not published at all.
    for name in ("prometheus", "grafana"):
        for port in services[name]["ports"]:
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert "ports" not in services["ingestd"]


def test_compose_pins_timescaledb_and_checks_ingestd_health():
    services = compose_with(SECRETS)["services"]
    assert services["timescaledb"]["image"] == "timescale/timescaledb:2.28.3-pg15"
    for name in ("prometheus", "grafana", "mosquitto"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
    check = services["ingestd"]["healthcheck"]["test"]
    assert check == ["CMD", "python", "-m", "deploy.healthcheck", "ingestd"]


# --- the entrypoint's account step, for real -------------------------------------------


def run_entrypoint(env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(DEPLOY / "entrypoint.sh"), "migrate"],
        env={"PATH": os.environ["PATH"], "BEMCOM_PYTHON": sys.executable, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def user(engine, username: str):
    with engine.connect() as connection:
        return connection.execute(
            select(auth_user.c.id, auth_user.c.password, auth_user.c.is_active).where(
                auth_user.c.username == username
            )
        ).one()


def test_a_changed_superuser_survives_a_restart(tmp_path: Path):
    # On a new PostgreSQL database (compose's), which the entrypoint migrates itself. The
    # account code is the same SQLAlchemy on SQLite (test_entrypoint.py runs that for real).
    with fresh_postgres_env() as database:
        changed_superuser_survives_a_restart(database, tmp_path)


def changed_superuser_survives_a_restart(database: dict[str, str], tmp_path: Path) -> None:
    env = {
        **database,
        "LOGLEVEL": "WARNING",
        "DJANGO_SUPERUSER_USERNAME": "boss",
        "DJANGO_SUPERUSER_PASSWORD": "first-password",
        "BEMCOM_METRICS_PASSWORD": "scrape-password",
    }
    run_entrypoint(env, tmp_path)
    engine = create_sqlalchemy_engine(load_settings(env))
    try:
        first = user(engine, "boss")
        assert verify_password(first.password, "first-password")
        # What the admin UI does: a new password, and the account deactivated.
        with engine.begin() as connection:
            connection.execute(
                update(auth_user)
                .where(auth_user.c.id == first.id)
                .values(password=hash_password("changed-in-the-ui"), is_active=False)
            )
        run_entrypoint(env, tmp_path)  # the container restarts
        after = user(engine, "boss")
        assert after.id == first.id
        assert verify_password(after.password, "changed-in-the-ui")
        assert not verify_password(after.password, "first-password")
        assert not after.is_active
        # The metrics account: view_datapoint only, not a superuser, the variable's password.
        metrics = user(engine, "prometheus")
        assert verify_password(metrics.password, "scrape-password")
        with engine.connect() as connection:
            assert permissions_of(connection, metrics.id) == {"view_datapoint"}
            superuser = connection.execute(
                select(auth_user.c.is_superuser).where(auth_user.c.id == metrics.id)
            ).scalar_one()
        assert not superuser
    finally:
        engine.dispose()


def test_the_metrics_account_cannot_be_the_superuser(tmp_path: Path):
    env = {
        "PATH": os.environ["PATH"],
        "BEMCOM_PYTHON": sys.executable,
        "BEMCOM_DATA_DIR": str(tmp_path / "data"),
        "LOGLEVEL": "WARNING",
        "DJANGO_SUPERUSER_USERNAME": "prometheus",
        "DJANGO_SUPERUSER_PASSWORD": "boss-password",
        "BEMCOM_METRICS_PASSWORD": "scrape-password",
    }
    done = subprocess.run(
        ["bash", str(DEPLOY / "entrypoint.sh"), "migrate"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 2 and "must not be the superuser" in done.stderr
    assert not (tmp_path / "data").exists()  # refused before migrating anything


# --- SQLite file modes, on real files ----------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_file_and_directory_are_created_owner_only(tmp_path: Path):
    old_umask = os.umask(0o022)  # a usual umask: what SQLite alone would create 0644 with
    try:
        settings = load_settings({"BEMCOM_DATA_DIR": str(tmp_path / "new" / "data")})
        connection = connect_sqlite(settings)
        connection.execute("CREATE TABLE t (x)")  # WAL mode: -wal and -shm appear now
        connection.execute("INSERT INTO t VALUES (1)")
        assert mode(tmp_path / "new" / "data") == 0o700
        assert mode(settings.sqlite_path) == 0o600
        for suffix in ("-wal", "-shm"):
            companion = settings.sqlite_path.with_name(settings.sqlite_path.name + suffix)
            assert companion.exists() and mode(companion) == 0o600, suffix
        connection.close()
    finally:
        os.umask(old_umask)


@pytest.mark.parametrize("opener", ["sqlalchemy", "sqlite3"])
def test_wider_modes_of_an_existing_database_are_narrowed_at_start(tmp_path: Path, opener):
    data = tmp_path / "data"
    data.mkdir()
    database = data / "db.sqlite3"
    database.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        (data / f"db.sqlite3{suffix}").write_bytes(b"")
        (data / f"db.sqlite3{suffix}").chmod(0o664)
    data.chmod(0o755)
    database.chmod(0o644)
    settings = load_settings({"BEMCOM_DATA_DIR": str(data)})
    if opener == "sqlalchemy":
        create_sqlalchemy_engine(settings).dispose()
    else:
        connect_sqlite(settings).close()
    assert mode(data) == 0o700
    assert mode(database) == 0o600
    for suffix in ("-wal", "-shm"):
        path = data / f"db.sqlite3{suffix}"
        assert not path.exists() or mode(path) == 0o600, suffix
