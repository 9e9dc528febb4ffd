"""Opening the SQLite database again in a process must not release the locks its open
connections hold: closing any descriptor of a file drops all of the process's POSIX locks on
it, and another process closing its last connection then takes itself for the last one,
checkpoints and removes the WAL under our connections: they then see different files (a
lost row here, "disk I/O error" in readapi). Found by the admin
CLI test: a CLI process ran while readapi apps of the test process had the file open."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import text

from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings


def test_a_second_engine_keeps_the_first_ones_locks(sqlite_env):
    settings = load_settings(sqlite_env)
    first = create_sqlalchemy_engine(settings)
    try:
        with first.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM connector")).scalar_one() == 0
            second = create_sqlalchemy_engine(settings)  # what a second app or CLI call does
            second.dispose()
            # Another process writes and closes its only connection.
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
                    "c.execute('PRAGMA journal_mode=WAL');"
                    "c.execute(\"INSERT INTO connector (name, date_added) VALUES ('x', 0)\");"
                    "c.commit(); c.close()",
                    str(settings.sqlite_path),
                ],
                check=True,
                timeout=60,
            )
            # A fresh connection of ours writes, the old one reads: both must see one file.
            with first.begin() as other:
                other.execute(text("INSERT INTO connector (name, date_added) VALUES ('y', 0)"))
            connection.rollback()
            assert connection.execute(text("SELECT count(*) FROM connector")).scalar_one() == 2
    finally:
        first.dispose()
