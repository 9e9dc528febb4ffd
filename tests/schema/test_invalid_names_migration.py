"""Migration 0003 reports every stored connector and controller name that the broker
refuses (or that the entry checks refuse), on PostgreSQL and SQLite, and renames nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import insert, select

from schema import tables as t
from schema.database import create_sqlalchemy_engine
from schema.migrate import migrate
from schema.settings import load_settings
from tests.conftest import PG_HOST, PG_PORT, PG_USER, admin_connect, base_env

REFUSED_BY_BROKER = ["x\tpoison", "nel\x85", "nc\ufdd0", "bom\ufffe", "a+b", "p1\U0001ffff"]
NOT_VALID = ["a/b", "$SYS", " padded"]
FINE = ["boiler", "Grüße 2", "日本"]


@pytest.fixture(params=["postgres", "sqlite"])
def unmigrated_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield base_env(BEMCOM_DATA_DIR=str(tmp_path / "data"))
        return
    name = f"bemcom_test_{secrets.token_hex(6)}"
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base_env(
        DJANGOAPIDB_HOST=PG_HOST,
        DJANGOAPIDB_PORT=str(PG_PORT),
        DJANGOAPIDB_USER=PG_USER,
        DJANGOAPIDB_DBNAME=name,
    )
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_0003_reports_names_and_renames_nothing(unmigrated_env: dict[str, str]) -> None:
    engine = create_sqlalchemy_engine(load_settings(unmigrated_env))
    try:
        migrate(engine, "0002")
        names = REFUSED_BY_BROKER + NOT_VALID + FINE
        with engine.begin() as connection:
            for index, name in enumerate(names):
                connection.execute(insert(t.connector).values(name=name, date_added=index))
            connection.execute(insert(t.controller).values(name="ctl\x7f"))
            connection.execute(insert(t.controller).values(name="ctl"))
        with structlog.testing.capture_logs() as logs:
            migrate(engine, "0003")
        reported = {
            (e["log_level"], e["event"], e["table"], e["name"])
            for e in logs
            if e["event"] in ("name_refused_by_broker", "name_not_valid")
        }
        assert reported == {
            *{("warning", "name_refused_by_broker", "connector", n) for n in REFUSED_BY_BROKER},
            *{("warning", "name_not_valid", "connector", n) for n in NOT_VALID},
            ("warning", "name_refused_by_broker", "controller", "ctl\x7f"),
        }
        problems = {e["name"]: e["problem"] for e in logs if "problem" in e}
        assert "control character U+0009" in problems["x\tpoison"]
        assert "non-character U+1FFFF" in problems["p1\U0001ffff"]
        with engine.connect() as connection:
            assert sorted(connection.execute(select(t.connector.c.name)).scalars()) == sorted(names)
        # Reported once: a later start (0003 already applied) says nothing again.
        with structlog.testing.capture_logs() as again:
            migrate(engine)
        assert not [e for e in again if e["event"] == "name_refused_by_broker"]
    finally:
        engine.dispose()
