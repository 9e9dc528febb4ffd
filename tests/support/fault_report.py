"""The cost of a fault, as the fault tests measure it, for docs/RELIABILITY.md.

Each figure is printed (visible with `pytest -s`) and, when BEMCOM_FAULT_REPORT names a file,
appended to it as one JSON line, so a run of the fault tests yields the table's numbers.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request


def record_fault_cost(scenario: str, **figures: float | int) -> None:
    line = json.dumps({"scenario": scenario, **figures})
    print(f"fault cost: {line}")
    path = os.environ.get("BEMCOM_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as report:
            report.write(line + "\n")


def scrape_total(port: int, name: str) -> float:
    """Sum of a counter's samples on an ingestd process's metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "_total")
    )


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 2)
