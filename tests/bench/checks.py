"""What a benchmark run must show before its figure counts, and the verdict over all runs.

A rate is only worth reporting when every message arrived exactly once with its own value:
count(*) alone cannot say so, because the primary key's upsert folds a duplicate into the
row it repeats. So each ingest run is checked three ways: ingestd's own counter of messages
stored against the count published (a duplicate counts twice there), every stored value
against the one the publisher sent for that datapoint and timestamp, and every last value.
"""

from __future__ import annotations

import collections
import subprocess
import threading

from sqlalchemy import select

from schema import tables as t
from tests.bench.publisher import T0

# The publisher's stream (tests/bench/publisher.py): message i goes to datapoint
# first_id + i % n, with timestamp T0 + i // n and value i + 0.5.


def sent(i: int, n_datapoints: int) -> tuple[int, int, float]:
    """(datapoint offset, timestamp in ms, value) of the publisher's message i."""
    return i % n_datapoints, T0 + i // n_datapoints, i + 0.5


def check_rows(engine, first_id: int, n_datapoints: int, published: int) -> dict:
    """Compare every stored value and last value with what the publisher sent."""
    wrong_values = rows = 0
    with engine.connect() as connection:
        for datapoint_id, time_ms, value in connection.execute(
            select(
                t.datapoint_value.c.datapoint_id,
                t.datapoint_value.c.time,
                t.datapoint_value.c.value_num,
            )
        ):
            rows += 1
            offset, k = datapoint_id - first_id, time_ms - T0
            i = k * n_datapoints + offset
            if not (0 <= offset < n_datapoints and 0 <= i < published and value == i + 0.5):
                wrong_values += 1
        last = {
            datapoint_id - first_id: (time_ms, value)
            for datapoint_id, time_ms, value in connection.execute(
                select(
                    t.datapoint_last_value.c.datapoint_id,
                    t.datapoint_last_value.c.time,
                    t.datapoint_last_value.c.value_num,
                )
            )
        }
    expected_last = {}
    for offset in range(min(n_datapoints, published)):
        i = offset + n_datapoints * ((published - 1 - offset) // n_datapoints)
        _, time_ms, value = sent(i, n_datapoints)
        expected_last[offset] = (time_ms, value)
    wrong_last = sum(1 for offset, want in expected_last.items() if last.get(offset) != want)
    wrong_last += len(set(last) - set(expected_last))
    return {"rows": rows, "wrong_values": wrong_values, "wrong_last_values": wrong_last}


def problems(label: str, run: dict) -> list[str]:
    """Every reason this run's figure cannot be trusted; empty when it can.

    Keys read (each optional): published, finished, lost, stored_counted (ingestd's own
    counter), rejected, rows, wrong_values, wrong_last_values, received (a bare
    subscriber's count), capped and nr_throttled (a cgroup cap), errors (free text).
    """
    found = []
    published = run.get("published")
    if run.get("finished") is False:
        found.append(f"{label}: did not finish ({run.get('unfinished', 'no progress')})")
    if run.get("lost", 0) > 0:
        found.append(f"{label}: lost {run['lost']} of {published} messages")
    if "stored_counted" in run and run["stored_counted"] != published:
        found.append(
            f"{label}: ingestd counted {run['stored_counted']} messages stored for "
            f"{published} published (duplicates or losses the upsert hides)"
        )
    if run.get("rejected"):
        found.append(f"{label}: ingestd rejected {run['rejected']} messages")
    if "rows" in run and run["rows"] != published:
        found.append(f"{label}: {run['rows']} rows stored for {published} published")
    if run.get("wrong_values"):
        found.append(f"{label}: {run['wrong_values']} stored values differ from those sent")
    if run.get("wrong_last_values"):
        found.append(f"{label}: {run['wrong_last_values']} last values differ from those sent")
    if "received" in run and run["received"] != published:
        found.append(f"{label}: the subscriber received {run['received']} of {published}")
    if run.get("capped") and not run.get("nr_throttled"):
        found.append(
            f"{label}: the cgroup cap was never applied (cpu.stat nr_throttled "
            f"{run.get('nr_throttled')}): the figure is not a capped one"
        )
    found += [f"{label}: {error}" for error in run.get("errors", ())]
    return found


class StderrTail:
    """Reads a child's stderr as it comes, so a chatty child never blocks on a full pipe,
    and keeps the last lines to name in an error."""

    def __init__(self, process: subprocess.Popen, lines: int = 50) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)
