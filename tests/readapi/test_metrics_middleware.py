"""What /metrics/ counts when a request ends without an answer."""

from __future__ import annotations

import asyncio

import pytest

from readapi.metrics import MetricsMiddleware, RequestMetrics


class ClientLeft(Exception):
    pass


def _run(app) -> dict[str, float]:
    metrics = RequestMetrics()
    middleware = MetricsMiddleware(app, metrics)
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
    messages = iter([{"type": "http.disconnect"}])

    async def receive():
        return next(messages)

    async def send(message):
        pass

    with pytest.raises((ClientLeft, RuntimeError)):
        asyncio.run(middleware(scope, receive, send))
    return {
        sample.labels["status"]: sample.value
        for family in metrics.requests.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_a_client_that_left_is_499_not_500():
    async def reads_body(scope, receive, send):
        await receive()
        raise ClientLeft

    assert _run(reads_body) == {"499": 1.0}


def test_the_500_litestar_answers_a_cut_body_with_is_499():
    async def answers_500(scope, receive, send):
        await receive()  # Litestar: "client disconnected prematurely"
        await send({"type": "http.response.start", "status": 500, "headers": []})
        raise ClientLeft

    assert _run(answers_500) == {"499": 1.0}


def test_a_crash_before_any_answer_is_500():
    async def crashes(scope, receive, send):
        raise RuntimeError("bug")

    assert _run(crashes) == {"500": 1.0}
