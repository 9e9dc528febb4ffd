"""Prometheus metrics of the HTTP side, multiprocess-safe across uvicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (readapi.__main__ sets it before any worker starts), every
worker writes its samples to files there and /metrics/ collects them all; otherwise (a test,
one process) the metrics live in a registry of their own per application.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.values import ValueClass

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
MEMORY_SAMPLE_SECONDS = 5.0
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*_(\d+)\.db$")


def resident_memory_bytes() -> int | None:
    """This process's resident set size, from /proc (None where there is no /proc)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of worker processes that are gone (a crashed worker restarted by
    uvicorn), so /metrics/ does not report their last memory forever."""
    for name in os.listdir(directory):
        match = _LIVE_GAUGE_FILE.match(name)
        if match and not _pid_alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), directory)


def multiprocess_mode() -> bool:
    # prometheus_client chose its value class when it was imported: files or memory.
    return getattr(ValueClass, "__name__", "") != "MutexValue"


class RequestMetrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess = multiprocess_mode()
        self.multiprocess_dir = multiprocess_dir
        # In multiprocess mode samples go to files and a fresh registry collects them; metrics
        # must not also sit in a registry of their own then.
        self.registry = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter(
            "readapi_http_requests",
            "HTTP requests answered, by route and status code.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        # prometheus_client's process_* metrics do not work across multiprocess workers: each
        # worker reports its own resident memory instead, labelled with its pid.
        self.worker_memory = Gauge(
            "readapi_worker_resident_memory_bytes",
            "Resident memory of each worker process, sampled every few seconds.",
            multiprocess_mode="liveall",
            registry=self.registry,
        )
        self._memory_task: asyncio.Task | None = None
        self.latency = Histogram(
            "readapi_http_request_duration_seconds",
            "Time from request to the last byte of the response.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def sample_memory(self) -> None:
        rss = resident_memory_bytes()
        if rss is not None:
            self.worker_memory.set(rss)

    async def _sample_memory_forever(self) -> None:
        while True:
            self.sample_memory()
            await asyncio.sleep(MEMORY_SAMPLE_SECONDS)

    async def start(self) -> None:
        """Sample this worker's memory every few seconds, for as long as the worker runs."""
        # At once, so that a scrape right after start-up never reads the gauge's initial 0.
        self.sample_memory()
        self._memory_task = asyncio.get_running_loop().create_task(self._sample_memory_forever())

    async def stop(self) -> None:
        if self._memory_task is not None:
            self._memory_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._memory_task
        if self.multiprocess and self.multiprocess_dir:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)

    def exposition(self) -> tuple[bytes, str]:
        if self.multiprocess:
            if self.multiprocess_dir:
                forget_dead_workers(self.multiprocess_dir)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: counts every HTTP response and times it."""

    def __init__(self, app, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        client_gone = False

        async def receive_and_watch():
            nonlocal client_gone
            message = await receive()
            if message["type"] == "http.disconnect":
                client_gone = True
            return message

        async def send_and_record(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_and_watch, send_and_record)
        finally:
            if client_gone:
                # nginx's "client closed request": the client left before the answer was
                # complete. Litestar answers a body cut short with a 500 nobody receives;
                # counting that would report a server fault that never happened.
                status = 499
            handler = scope.get("route_handler")
            route = getattr(handler, "name", None) or ("unmatched" if handler is None else "?")
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)
