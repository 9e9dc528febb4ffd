"""Schemathesis against the OpenAPI document of a real `python -m readapi` process.

Every operation gets schema-conforming (positive) and non-conforming (negative) requests,
authenticated as the superuser. Whatever comes in, the answer is never a 5xx, and every
error is JSON.
"""

from __future__ import annotations

import os
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


def fuzz(operation, mode: GenerationMode, server_url: str, problems: list[str], statuses: Counter):
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


def test_fuzz_every_operation(server_url: str):
    schema = schemathesis.openapi.from_url(f"{server_url}/schema/")
    problems: list[str] = []
    statuses: Counter = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(result.ok(), mode, server_url, problems, statuses)
    assert operations >= 15
    assert problems == []
    # The requests got past authentication and parsing, not only rejected.
    assert statuses[2] > 50 and statuses[4] > 50, statuses
