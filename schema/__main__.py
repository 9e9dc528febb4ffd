"""`python -m schema migrate`: bring the configured database to the newest schema."""

from __future__ import annotations

import argparse
import os
import sys

import structlog

from schema.database import create_sqlalchemy_engine
from schema.log_setup import configure_logging
from schema.migrate import current_revision, migrate
from schema.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schema")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply every pending migration")
    sub.add_parser("revision", help="print the database's current schema revision")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    log = structlog.get_logger("schema")
    engine = create_sqlalchemy_engine(settings)
    if args.command == "migrate":
        migrate(engine, timescaledb=settings.timescaledb)
        log.info("migrated", revision=current_revision(engine), postgres=settings.uses_postgres)
    else:
        print(current_revision(engine))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
