"""Assembles ingestd from its parts and runs it until stopped, or until one of its threads
dies: then readiness drops to 0 and `failed` is set, so the process exits non-zero and its
supervisor (systemd, docker) restarts it rather than keeping a process that stores nothing."""

from __future__ import annotations

import threading

import structlog
from prometheus_client import start_http_server

from ingestd import mqtt_session
from ingestd.control_plane import ControlPlane
from ingestd.metrics import IngestMetrics
from ingestd.pipeline import Inbox, MessageIntake, PartitionWriter
from ingestd.rate_limited_log import RateLimitedLog
from ingestd.store import Store
from schema.database import connect_sqlite, create_sqlalchemy_engine, psycopg_conninfo
from schema.settings import Settings

WATCHDOG_INTERVAL_S = 0.5
FAILED_EXIT_CODE = 3


class IngestDaemon:
    def __init__(self, settings: Settings, metrics: IngestMetrics | None = None) -> None:
        self.settings = settings
        self.log = structlog.get_logger("ingestd")
        self.metrics = metrics or IngestMetrics()
        # SQLite has a single writer; PostgreSQL gets N_MTD_WRITE_THREADS.
        self.partitions = settings.n_mtd_write_threads if settings.uses_postgres else 1
        capacity = settings.ingestd_receive_maximum + settings.ingestd_max_batch
        self.inbox = Inbox(self.partitions, capacity)
        self.metrics.watch_queue(self.inbox.depth)
        self.client = mqtt_session.create_client(settings, self.metrics)
        rejections = RateLimitedLog(self.log)
        self.intake = MessageIntake(
            self.inbox,
            self.client.ack,
            self.metrics,
            rejections,
            settings.ingestd_max_payload_bytes,
        )
        self.engine = create_sqlalchemy_engine(settings)
        self.control_plane = ControlPlane(
            self.engine,
            self.client,
            self.intake,
            self.partitions,
            settings.ingestd_share_group,
            self.metrics,
            self.log,
        )
        self.client.on_message = self.intake.on_message
        self.client.on_publish_received = self.intake.take
        self.client.on_connect = self.control_plane.on_connect
        self.client.on_disconnect = self.control_plane.on_disconnect
        self.client.on_subscribe = self.control_plane.on_subscribe
        self.stopping = threading.Event()
        self.aborting = threading.Event()
        self._pool = None
        self.store = self._create_store()
        self.writers = [
            PartitionWriter(
                partition,
                self.inbox,
                self.store,
                self.client.ack_many,
                self.metrics,
                rejections,
                self.log,
                settings.ingestd_max_batch,
                self.stopping,
                self.aborting,
            )
            for partition in range(self.partitions)
        ]
        self._control_thread = threading.Thread(
            target=self.control_plane.run,
            args=(self.stopping,),
            name="control-plane",
            daemon=True,
        )
        self._metrics_server = None
        self._network_thread: threading.Thread | None = None
        self.failed = threading.Event()
        self.on_failure = lambda: None  # called once, from the watchdog thread
        self._watchdog = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def _create_store(self) -> Store:
        keep_history = self.settings.activate_history_extension
        if self.settings.uses_postgres:
            from ingestd.pg_store import PostgresStore, create_pool

            self._pool = create_pool(psycopg_conninfo(self.settings), self.partitions)
            return PostgresStore(self._pool, keep_history)
        from ingestd.sqlite_store import SqliteStore

        return SqliteStore(connect_sqlite(self.settings), keep_history)

    def start(self) -> None:
        if self.settings.ingestd_metrics_port:
            self._metrics_server = start_http_server(
                self.settings.ingestd_metrics_port, registry=self.metrics.registry
            )
        if self._pool is not None:
            self._pool.open()
        self.control_plane.sync()
        for writer in self.writers:
            writer.start()
        self._control_thread.start()
        mqtt_session.start(self.client, self.settings)
        self._network_thread = mqtt_session.network_thread(self.client)
        self.metrics.ready.set(1)
        self._watchdog.start()
        self.log.info(
            "ingestd_started",
            broker=f"{self.settings.mqtt_broker_host}:{self.settings.mqtt_broker_port}",
            database="postgresql" if self.settings.uses_postgres else "sqlite",
            writers=self.partitions,
            history=self.settings.activate_history_extension,
        )

    def dead_threads(self) -> list[str]:
        """Names of the threads ingestd cannot work without that are no longer running."""
        threads = [*self.writers, self._control_thread]
        if self._network_thread is not None:
            threads.append(self._network_thread)
        return [thread.name for thread in threads if not thread.is_alive()]

    def _watch(self) -> None:
        while not self.stopping.wait(WATCHDOG_INTERVAL_S):
            dead = self.dead_threads()
            if dead and not self.stopping.is_set():
                self.metrics.ready.set(0)
                self.log.critical("ingestd_thread_died", threads=dead, exit_code=FAILED_EXIT_CODE)
                self.failed.set()
                self.on_failure()
                return

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        """True once connected and every subscription is granted (tests and readiness)."""
        return self.control_plane.subscribed.wait(timeout)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop taking messages, commit and acknowledge what is held, then disconnect.

        Returns False if the database did not take what was held within `timeout`; that is
        left unacknowledged, so the broker delivers it again on the next start.
        """
        self.metrics.ready.set(0)
        self.intake.accepting = False
        self.stopping.set()
        self.inbox.closed.set()
        flushed = True
        for writer in self.writers:
            writer.join(timeout)
            if writer.is_alive():
                flushed = False
        if not flushed:
            self.aborting.set()
            for writer in self.writers:
                writer.join(5)
        self._control_thread.join(5)
        if self._watchdog.is_alive():
            self._watchdog.join(5)
        self.client.disconnect()
        self.client.loop_stop()
        if self._pool is not None:
            self._pool.close()
        if self._metrics_server is not None:
            server, thread = self._metrics_server
            server.shutdown()
            thread.join(5)
        self.engine.dispose()
        # What was committed before exit: the record a supervisor or a test can check.
        self.log.info(
            "ingestd_stopped", flushed=flushed, held=self.inbox.depth(), **self.metrics.totals()
        )
        return flushed
