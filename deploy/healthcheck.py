"""`python -m deploy.healthcheck [all|ingestd|readapi]`: the container's HEALTHCHECK.

Without an argument the role is read from PID 1's command line (the entrypoint `exec`s the
single-process roles), so one HEALTHCHECK in the image fits every compose service.
readapi: GET /health/live answers 200. ingestd: its /metrics answers and says it is connected
to the broker (`ingestd_mqtt_connected 1`) and the database (`ingestd_database_connected 1`),
and, where ingestd reports it, ready (`ingestd_ready` not 0). A port that answers is not
enough: ingestd serves its metrics while it cannot reach either.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from schema.settings import Settings, SettingsError, load_settings

# gauge -> what it means when it is not 1. A missing gauge is a problem too, except the
# optional ones (reported by some versions only).
INGESTD_GAUGES = {
    "ingestd_mqtt_connected": "ingestd is not connected to the MQTT broker",
    "ingestd_database_connected": "ingestd cannot reach the database",
}
INGESTD_OPTIONAL_GAUGES = {"ingestd_ready": "ingestd reports it is not ready"}


def role_of_pid_1() -> str:
    try:
        command = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "all"
    if b"ingestd" in command:
        return "ingestd"
    if b"readapi" in command:
        return "readapi"
    return "all"


def fetch(url: str) -> str | None:
    """The body of a 200 answer, or None."""
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            if response.status != 200:
                return None
            return response.read().decode("utf-8", "replace")
    except OSError:
        return None


def gauges(exposition: str) -> dict[str, float]:
    """Every unlabelled sample of a Prometheus text exposition, by name."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if not sample.labels
    }


def ingestd_problems(exposition: str) -> list[str]:
    values = gauges(exposition)
    problems = []
    for name, meaning in INGESTD_GAUGES.items():
        if values.get(name) != 1:
            shown = f"{values[name]:g}" if name in values else "missing"
            problems.append(f"{meaning} ({name} = {shown})")
    for name, meaning in INGESTD_OPTIONAL_GAUGES.items():
        if name in values and values[name] != 1:
            problems.append(f"{meaning} ({name} = {values[name]:g})")
    return problems


def healthy(settings: Settings, role: str) -> list[str]:
    """The problems found; empty when healthy."""
    problems = []
    if role in ("all", "readapi"):
        url = f"http://127.0.0.1:{settings.http_port}{settings.root_path}/health/live"
        if fetch(url) is None:
            problems.append(f"readapi does not answer {url}")
    if role in ("all", "ingestd") and settings.ingestd_metrics_port:
        url = f"http://127.0.0.1:{settings.ingestd_metrics_port}/metrics"
        exposition = fetch(url)
        if exposition is None:
            problems.append(f"ingestd does not answer {url}")
        else:
            problems += ingestd_problems(exposition)
    return problems


def main(argv: list[str]) -> int:
    role = argv[0] if argv else role_of_pid_1()
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 1
    problems = healthy(settings, role)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
