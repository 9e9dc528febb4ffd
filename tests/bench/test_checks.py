"""The bench's verdict: each reason a figure cannot be trusted makes `make bench` fail.

Each failure reason is forced here on its own, on real parts where it has any: a real
SQLite database filled as the publisher's stream would fill it, a real child flooding its
stderr, a real cgroup. The benchmarks themselves are too long for the suite.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import insert, update

from schema import tables as t
from tests.bench import cpu_cap
from tests.bench.__main__ import verdict
from tests.bench.checks import StderrTail, check_rows, problems, sent
from tests.bench.ingest_bench import DATAPOINTS, Database

PUBLISHED = 2_500  # two and a half rounds over the datapoints: last values at two timestamps
CLEAN = {
    "published": PUBLISHED,
    "finished": True,
    "lost": 0,
    "stored_counted": PUBLISHED,
    "rejected": 0,
    "rows": PUBLISHED,
    "wrong_values": 0,
    "wrong_last_values": 0,
}


def test_a_clean_run_has_no_problem():
    assert problems("run", CLEAN) == []
    assert problems("ceiling", {"published": 10, "received": 10, "finished": True}) == []
    assert problems("capped", {**CLEAN, "capped": True, "nr_throttled": 3}) == []


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"lost": 3}, "lost 3 of 2500"),
        ({"finished": False, "unfinished": "7 of 2500 stored"}, "did not finish (7 of 2500"),
        ({"stored_counted": PUBLISHED + 1}, "counted 2501 messages stored for 2500"),
        ({"rejected": 2}, "rejected 2"),
        ({"rows": PUBLISHED - 1}, "2499 rows stored"),
        ({"wrong_values": 1}, "1 stored values differ"),
        ({"wrong_last_values": 4}, "4 last values differ"),
        ({"received": PUBLISHED - 5}, "received 2495 of 2500"),
        ({"capped": True, "nr_throttled": 0}, "cgroup cap was never applied"),
        ({"errors": ["ingestd's /metrics did not answer"]}, "/metrics did not answer"),
    ],
)
def test_each_reason_is_named(change, reason):
    found = problems("the run", {**CLEAN, **change})
    assert len(found) == 1 and reason in found[0] and found[0].startswith("the run: ")


def test_verdict_fails_on_any_problem_and_counts_drain_losses(capsys):
    assert verdict({"lost": 0, "problems": [], "drain_pg_qos1_lost": 0}) == 0
    results = {"lost": 0, "problems": [], "drain_pg_qos1_lost": 2, "drain_pg_qos1_capped_lost": 1}
    assert verdict(results) == 1
    assert results["lost"] == 3
    assert "3 messages lost" in capsys.readouterr().err
    assert verdict({"lost": 0, "problems": ["readapi benchmark failed: boom"]}) == 1


@pytest.fixture
def database():
    db = Database("sqlite")
    try:
        yield db
    finally:
        db.drop()


def _store_as_published(db: Database) -> None:
    """Rows and last values exactly as ingestd stores the publisher's stream."""
    rows = []
    last = {}
    for i in range(PUBLISHED):
        offset, time_ms, value = sent(i, DATAPOINTS)
        rows.append({"datapoint_id": db.first_id + offset, "time": time_ms, "value_num": value})
        last[offset] = rows[-1]
    with db.engine.begin() as connection:
        connection.execute(insert(t.datapoint_value), rows)
        connection.execute(insert(t.datapoint_last_value), list(last.values()))


def test_check_rows_sees_wrong_and_misplaced_values(database):
    _store_as_published(database)
    clean = check_rows(database.engine, database.first_id, DATAPOINTS, PUBLISHED)
    assert clean == {"rows": PUBLISHED, "wrong_values": 0, "wrong_last_values": 0}
    value, last = t.datapoint_value, t.datapoint_last_value
    with database.engine.begin() as connection:
        # One value not the one sent; one row at a timestamp never published.
        connection.execute(
            update(value)
            .where(
                value.c.datapoint_id == database.first_id + 7,
                value.c.time == sent(7, DATAPOINTS)[1],
            )
            .values(value_num=123.0)
        )
        connection.execute(
            insert(value).values(
                datapoint_id=database.first_id, time=sent(0, DATAPOINTS)[1] + 99, value_num=0.5
            )
        )
        # A last value left behind at an older message.
        connection.execute(
            update(last)
            .where(last.c.datapoint_id == database.first_id + 3)
            .values(time=sent(3, DATAPOINTS)[1], value_num=3.5)
        )
    found = check_rows(database.engine, database.first_id, DATAPOINTS, PUBLISHED)
    assert found == {"rows": PUBLISHED + 1, "wrong_values": 2, "wrong_last_values": 1}


def test_a_child_flooding_stderr_does_not_block():
    """4 MiB on stderr is far beyond a pipe's buffer: undrained, the child would hang."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfor i in range(65536): print('x' * 63, i, file=sys.stderr)",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    tail = StderrTail(child, lines=3)
    try:
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
    deadline = time.monotonic() + 30
    while not tail.text().endswith(" 65535\n") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tail.text().splitlines()[-1].endswith(" 65535")
    assert len(tail.lines) == 3


def test_cgroup_cap_is_confirmed_by_nr_throttled():
    if not cpu_cap.available():
        # Then the bench reports the capped figure as skipped; it cannot make one up.
        with pytest.raises(OSError):
            cpu_cap.CpuCap(0.5)
        return
    with cpu_cap.capped(0.05) as unused_cap, cpu_cap.capped(0.05) as busy_cap:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            busy_cap.add(busy.pid)
            deadline = time.monotonic() + 30
            while busy_cap.nr_throttled() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert busy_cap.nr_throttled() > 0
            # A cap nothing ran under (as when a pid was added too late or to the wrong group).
            assert unused_cap.nr_throttled() == 0
            run = {**CLEAN, "capped": True, "nr_throttled": unused_cap.nr_throttled()}
            assert "cgroup cap was never applied" in problems("unused", run)[0]
        finally:
            busy.kill()
            busy.wait()
