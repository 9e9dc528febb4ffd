"""Schemathesis against the OpenAPI document of a real `python -m readapi` process.

Every operation gets schema-conforming (positive) and non-conforming (negative) requests,
authenticated as the superuser. Whatever comes in, the answer is never a 5xx, and every
error is JSON. The operations fuzzed are every route the app serves (read from the app, so a
new route is fuzzed or this fails), and each got past authentication at least once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from readapi.app import create_app
from schema.settings import load_settings
from tests.readapi.conftest import ADMIN, seed_scene
from tests.readapi.test_process import ROOT
from tests.support.broker import free_port, wait_for_port

EXAMPLES = int(os.environ.get("READAPI_FUZZ_EXAMPLES", "12"))


@pytest.fixture
def server_url(pg_env: dict[str, str], unique_name: str) -> Iterator[str]:
    scene = seed_scene(pg_env, unique_name)
    scene.engine.dispose()
    port = free_port()
    env = {**os.environ, **pg_env, "BEMCOM_HTTP_PORT": str(port), "LOGLEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "readapi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def fuzz(
    operation,
    mode: GenerationMode,
    server_url: str,
    problems: list[str],
    statuses: Counter,
    authenticated: set[tuple[str, str]],
):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case) -> None:
        response = case.call(base_url=server_url, auth=ADMIN, timeout=30)
        label = f"{case.method} {case.formatted_path} ({mode.value})"
        statuses[response.status_code // 100] += 1
        if response.status_code not in (401, 403):
            authenticated.add((case.method.upper(), operation.path))
        # The documented status codes, content types and response schemas hold.
        try:
            case.validate_response(
                response,
                checks=[
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ],
            )
        except (AssertionError, BaseExceptionGroup) as failure:  # a group of check failures
            problems.append(f"{label}: {str(failure)[:300]}")
        if response.status_code >= 500:
            problems.append(f"{label}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400:
            content_type = str(response.headers.get("content-type", ""))
            if "application/json" not in content_type:
                problems.append(f"{label}: {response.status_code} as {content_type}")

    exercise()


def served_operations(env: dict[str, str]) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every documented route handler of the app; documented as
    clients call them, with a trailing slash unless the handler is declared without one."""
    found = set()
    for route in create_app(load_settings(env)).routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for handler in getattr(route, "route_handlers", ()):
            if handler.resolve_include_in_schema():
                called = f"{path}/" if handler.opt.get("trailing_slash", True) else path
                found |= {(m, called) for m in handler.http_methods - {"OPTIONS", "HEAD"}}
    return found


def test_fuzz_every_operation(server_url: str, pg_env: dict[str, str]):
    schema = schemathesis.openapi.from_url(f"{server_url}/schema/")
    problems: list[str] = []
    statuses: Counter = Counter()
    operations: set[tuple[str, str]] = set()
    authenticated: set[tuple[str, str]] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.add((operation.method.upper(), operation.path))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, server_url, problems, statuses, authenticated)
    # Every route, PUT, POST and DELETE included, and each one as an authenticated request.
    assert operations == served_operations(pg_env)
    assert sorted(operations - authenticated) == []
    assert problems == []
    # The requests got past authentication and parsing, not only rejected.
    assert statuses[2] > 50 and statuses[4] > 50, statuses
