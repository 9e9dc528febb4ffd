"""Cost per row of answering values: the original's way (default) against exact.

`python -m tests.bench.value_render_bench` prints ns per row of readapi.render's hot loop for
10,000-row chunks of each kind of stored value, as SQLite hands them over (value_num,
value_raw) and as PostgreSQL does (the value's text made by the server), in both modes.
"""

from __future__ import annotations

import json
import time

from readapi.render import encode_value_rows
from schema.values import _answers, answer_value, split_value

ROWS = 10_000
# kind -> the JSON text of row i: repeated values (a thermostat's, a switch's) and values
# that differ on every row (a meter's).
KINDS = {
    "float": lambda i: repr(20 + i / 1000),
    "int": lambda i: str(i),
    "numeric string, repeated": lambda i: '"22.30"',
    "numeric string, all different": lambda i: f'"{20 + i / 1000:.3f}"',
    "string, repeated": lambda i: '"on"',
    "string, all different": lambda i: f'"state {i}"',
    "bool": lambda i: "true",
    "null": lambda i: "null",
}


def best_ns_per_row(rows: list, exact: bool, repeats: int = 7) -> float:
    """The best of several runs; the cache is emptied before each, so every run pays for
    its misses as a first request would."""
    best = float("inf")
    for _ in range(repeats):
        _answers.clear()
        started = time.perf_counter_ns()
        encode_value_rows(rows, exact)
        best = min(best, time.perf_counter_ns() - started)
    return best / len(rows)


def run() -> dict:
    results = {}
    for name, text_of in KINDS.items():
        stored = [split_value(text_of(i)) for i in range(ROWS)]
        sqlite_rows = [(1_795_840_000_000 + i, num, raw) for i, (num, raw) in enumerate(stored)]
        # PostgreSQL: readapi.sql makes the text on the server; value_num only where needed.
        pg_rows = [
            (1_795_840_000_000 + i, None, answer_value(num, raw, exact=True))
            for i, (num, raw) in enumerate(stored)
        ]
        for backend, rows in (("sqlite", sqlite_rows), ("postgres", pg_rows)):
            for mode, exact in (("exact", True), ("original", False)):
                results[f"{backend} {name} {mode}"] = round(best_ns_per_row(rows, exact), 1)
    return results


if __name__ == "__main__":
    figures = run()
    for key, ns in figures.items():
        print(f"{key:40s} {ns:8.1f} ns/row")
    print(json.dumps({"value_render_ns_per_row": figures}))
