"""Prometheus metrics of the HTTP side, multiprocess-safe across uvicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (readapi.__main__ sets it before any worker starts), every
worker writes its samples to files there and /metrics/ collects them all; otherwise (a test,
one process) the metrics live in a registry of their own per application.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.values import ValueClass

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def multiprocess_mode() -> bool:
    # prometheus_client chose its value class when it was imported: files or memory.
    return getattr(ValueClass, "__name__", "") != "MutexValue"


class RequestMetrics:
    def __init__(self) -> None:
        self.multiprocess = multiprocess_mode()
        # In multiprocess mode samples go to files and a fresh registry collects them; metrics
        # must not also sit in a registry of their own then.
        self.registry = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter(
            "readapi_http_requests",
            "HTTP requests answered, by route and status code.",
            ("method", "route", "status"),
            registry=self.registry,
        )
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

    def exposition(self) -> tuple[bytes, str]:
        if self.multiprocess:
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
