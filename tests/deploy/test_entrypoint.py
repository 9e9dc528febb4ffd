"""deploy/entrypoint.sh: roles, migration retries, superuser, and stopping both processes.

A fake `python` records how it is called, so the script's logic runs for real without the
service; one test runs the real `migrate` role against a fresh SQLite database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings
from schema.tables import auth_user

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"

FAKE_PYTHON = r"""#!/usr/bin/env bash
echo "$$ $*" >> "$FAKE_LOG"
case "$*" in
  "-m schema migrate")
    n=$(cat "$FAKE_DIR/migrate_failures" 2>/dev/null || echo 0)
    if (( n > 0 )); then echo $((n - 1)) > "$FAKE_DIR/migrate_failures"; exit 1; fi
    exit 0 ;;
  "-m readapi createuser"*)
    read -r password; echo "stdin=$password" >> "$FAKE_LOG"; exit 0 ;;
  "-m ingestd"|"-m readapi")
    trap 'echo "$$ TERM $*" >> "$FAKE_LOG"; exit 0' TERM
    if [[ "$*" == "-m ${FAKE_EXIT_WHO:-none}" ]]; then sleep 0.5; exit 7; fi
    while true; do sleep 0.05; done ;;
  *) exit 0 ;;
esac
"""


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, str]:
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return {
        "PATH": os.environ["PATH"],
        "BEMCOM_PYTHON": str(python),
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_DIR": str(tmp_path),
        "BEMCOM_MIGRATE_DELAY": "0.05",
    }


def calls(env: dict[str, str]) -> list[str]:
    path = Path(env["FAKE_LOG"])
    return path.read_text().splitlines() if path.exists() else []


def commands(env: dict[str, str]) -> list[str]:
    """The calls without their pids."""
    return [line.split(" ", 1)[1] if line[0].isdigit() else line for line in calls(env)]


def entrypoint(env: dict[str, str], *args: str, timeout: float = 10) -> subprocess.Popen:
    return subprocess.Popen(["bash", str(ENTRYPOINT), *args], env=env)


def wait_for_calls(env: dict[str, str], *expected: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(e in commands(env) for e in expected):
            return
        time.sleep(0.05)
    raise AssertionError(f"expected {expected}, got {commands(env)}")


def test_migrate_role_migrates_and_creates_the_superuser(fake):
    env = {
        **fake,
        "DJANGO_SUPERUSER_USERNAME": "boss",
        "DJANGO_SUPERUSER_PASSWORD": "pa ss$word",
        "DJANGO_SUPERUSER_EMAIL": "b@example.com",
    }
    assert entrypoint(env, "migrate").wait(10) == 0
    assert commands(env) == [
        "-m schema migrate",
        "-m readapi createuser boss --superuser --keep-existing --email b@example.com",
        "stdin=pa ss$word",  # by stdin: a password on the command line shows in `ps`
    ]


def test_no_superuser_without_a_password(fake):
    env = {**fake, "DJANGO_SUPERUSER_USERNAME": "boss"}
    assert entrypoint(env, "migrate").wait(10) == 0
    assert commands(env) == ["-m schema migrate"]


def test_migration_is_retried_until_the_database_answers(fake, tmp_path):
    (tmp_path / "migrate_failures").write_text("3")
    assert entrypoint(fake, "migrate").wait(10) == 0
    assert commands(fake) == ["-m schema migrate"] * 4


def test_migration_gives_up(fake, tmp_path):
    (tmp_path / "migrate_failures").write_text("99")
    env = {**fake, "BEMCOM_MIGRATE_ATTEMPTS": "3"}
    assert entrypoint(env, "migrate").wait(10) == 1
    assert commands(env) == ["-m schema migrate"] * 3


@pytest.mark.parametrize("role", ["ingestd", "readapi"])
def test_single_role_replaces_the_shell(fake, role):
    process = entrypoint(fake, role)
    wait_for_calls(fake, f"-m {role}")
    # exec: the service is the container's PID 1 and gets `docker stop`'s SIGTERM itself.
    assert f"{process.pid} -m {role}" in calls(fake)
    assert "-m schema migrate" in commands(fake)
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert f"-m {'readapi' if role == 'ingestd' else 'ingestd'}" not in commands(fake)


def test_role_from_the_environment(fake):
    process = entrypoint({**fake, "BEMCOM_ROLE": "ingestd"})
    wait_for_calls(fake, "-m ingestd")
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_all_runs_both_and_sigterm_stops_both(fake):
    process = entrypoint(fake, "all")
    wait_for_calls(fake, "-m ingestd", "-m readapi")
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    wait_for_calls(fake, "TERM -m ingestd", "TERM -m readapi")


def test_all_stops_the_other_when_one_dies(fake):
    env = {**fake, "FAKE_EXIT_WHO": "readapi"}
    process = entrypoint(env, "all")
    assert process.wait(10) == 7  # the dead one's code: the orchestrator restarts us
    wait_for_calls(env, "TERM -m ingestd")


def test_backup_and_other_commands(fake):
    assert entrypoint(fake, "backup", "-b", "-t", "http://x").wait(10) == 0
    assert commands(fake) == ["-m backup -b -t http://x"]
    assert subprocess.run(["bash", str(ENTRYPOINT), "true"], env=fake).returncode == 0
    unknown = subprocess.run(
        ["bash", str(ENTRYPOINT)], env={**fake, "BEMCOM_ROLE": "nonsense"}, capture_output=True
    )
    assert unknown.returncode == 2 and b"unknown role" in unknown.stderr


def test_real_migrate_role_on_sqlite(tmp_path: Path):
    env = {
        "PATH": os.environ["PATH"],
        "BEMCOM_PYTHON": sys.executable,
        "BEMCOM_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SUPERUSER_USERNAME": "boss",
        "DJANGO_SUPERUSER_PASSWORD": "secret",
        "LOGLEVEL": "WARNING",
    }
    done = subprocess.run(["bash", str(ENTRYPOINT), "migrate"], env=env, cwd=REPO, timeout=120)
    assert done.returncode == 0
    engine = create_sqlalchemy_engine(load_settings(env))
    with engine.connect() as connection:
        row = connection.execute(
            select(auth_user.c.is_superuser).where(auth_user.c.username == "boss")
        ).one()
    engine.dispose()
    assert row.is_superuser
