"""What the route handlers share within one worker: settings, database, broker, auth, metrics.

Built by create_app, started and stopped with the application's lifespan (nothing connects at
import time, and each worker process has its own).
"""

from __future__ import annotations

import structlog

from readapi.auth import Authenticator
from readapi.db import Database, open_database
from readapi.login_throttle import LoginThrottle
from readapi.metrics import RequestMetrics
from readapi.publisher import Publisher
from schema.settings import Settings

log = structlog.get_logger("readapi")


class Services:
    def __init__(self, settings: Settings, metrics: RequestMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.database: Database | None = None
        self.publisher: Publisher | None = None
        self.authenticator: Authenticator | None = None

    def start(self) -> None:
        self.database = open_database(self.settings)
        self.authenticator = Authenticator(
            self.database, throttle=LoginThrottle.from_settings(self.database, self.settings)
        )
        self.publisher = Publisher(self.settings)
        self.publisher.start()
        log.info(
            "readapi_started",
            postgres=self.database.postgres,
            timescale=self.database.timescale,
            root_path=self.settings.root_path or "/",
        )

    def stop(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        if self.database is not None:
            self.database.dispose()
