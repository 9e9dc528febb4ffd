"""`python -m deploy.healthcheck [all|ingestd|readapi]`: the container's HEALTHCHECK.

Without an argument the role is read from PID 1's command line (the entrypoint `exec`s the
single-process roles), so one HEALTHCHECK in the image fits every compose service.
readapi: GET /health/live answers 200. ingestd: its metrics port answers (when enabled).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from schema.settings import Settings, SettingsError, load_settings


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


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return response.status == 200
    except OSError:
        return False


def healthy(settings: Settings, role: str) -> list[str]:
    """The problems found; empty when healthy."""
    problems = []
    if role in ("all", "readapi"):
        url = f"http://127.0.0.1:{settings.http_port}{settings.root_path}/health/live"
        if not answers(url):
            problems.append(f"readapi does not answer {url}")
    if role in ("all", "ingestd") and settings.ingestd_metrics_port:
        url = f"http://127.0.0.1:{settings.ingestd_metrics_port}/metrics"
        if not answers(url):
            problems.append(f"ingestd does not answer {url}")
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
