"""`python -m ingestd`: the MQTT -> database daemon (composition root)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

import msgspec
import structlog
from sqlalchemy.exc import OperationalError

from ingestd.daemon import FAILED_EXIT_CODE, IngestDaemon
from ingestd.identity import client_id_for
from schema.broker_security import broker_refused_at_start
from schema.database import create_sqlalchemy_engine
from schema.log_setup import configure_logging
from schema.migrate import migrate
from schema.settings import SettingsError, load_settings


def migrate_when_reachable(settings, log) -> None:
    """Migrate, waiting for a database that is not up yet (compose starts both at once)."""
    engine = create_sqlalchemy_engine(settings)
    delay = 1.0
    try:
        while True:
            try:
                migrate(engine, timescaledb=settings.timescaledb)
                return
            except OperationalError as error:
                log.warning("database_unreachable", error=str(error)[:200], retry_in_s=delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
    finally:
        engine.dispose()


def main() -> int:
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    log = structlog.get_logger("ingestd")
    settings = msgspec.structs.replace(
        settings, ingestd_client_id=client_id_for(settings, os.environ, socket.gethostname())
    )
    if broker_refused_at_start(settings):
        return 2
    migrate_when_reachable(settings, log)
    daemon = IngestDaemon(settings)
    stop_requested = threading.Event()

    def request_stop(signum, _frame):
        if stop_requested.is_set():
            daemon.aborting.set()  # a second signal: stop waiting for the database
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    daemon.on_failure = stop_requested.set
    daemon.start()
    stop_requested.wait()
    flushed = daemon.stop()
    if daemon.failed.is_set():
        return FAILED_EXIT_CODE  # a thread died: let the supervisor start a fresh process
    return 0 if flushed else 1


if __name__ == "__main__":
    sys.exit(main())
