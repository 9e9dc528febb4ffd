"""A private PostgreSQL server for tests that stop and start the database."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.support.broker import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"no PostgreSQL {name} under /usr/lib/postgresql")
    return found[-1]


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def timescaledb_library_installed() -> bool:
    """TimescaleDB's files are in this PostgreSQL's library directory."""
    return (Path(_bin("postgres")).parents[1] / "lib" / "timescaledb.so").exists()


class PostgresProcess:
    """A cluster of the test's own. `timescaledb`: preload the extension (True), or not
    (False: the extension's files may still be installed, as on a server whose operator
    has not preloaded it); None preloads it where it is installed, as production would."""

    def __init__(self, timescaledb: bool | None = None) -> None:
        if timescaledb is None:
            timescaledb = timescaledb_library_installed()
        self.timescaledb = timescaledb
        # Not under pytest's tmp_path: the postgres user must be able to reach the directory.
        self.directory = Path(tempfile.mkdtemp(prefix="bemcom-pg-"))
        self.directory.chmod(0o755)
        self.data = self.directory / "pgdata"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(
            _as_postgres([_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        if self.timescaledb:
            options += " -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
        subprocess.run(
            _as_postgres(
                [
                    _bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-w",
                    "-l",
                    str(self.directory / "server.log"),
                    "start",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user="postgres",
                    dbname="postgres",
                    autocommit=True,
                ) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
