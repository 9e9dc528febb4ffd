"""Scale-out benchmark: how fast one or two ingestd instances drain a backlog.

The broker holds MESSAGES QoS 1 messages for the instances' persistent sessions (published
while they were stopped, as after an outage); then the instances start and the time from the
first row stored to the last is measured. With the publisher out of the measured window, the
figure is the consumers' own rate, the one that more instances of a shared subscription
should raise, and the catch-up speed that matters after an outage.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import subprocess
import time

from tests.bench import cpu_cap
from tests.bench.checks import check_rows, problems
from tests.bench.ingest_bench import (
    DATAPOINTS,
    MESSAGES,
    ROUNDS,
    Database,
    _drop_session,
    _publish,
    _publisher_errors,
    ingestd_counts,
    start_ingestd,
    wait_subscribed,
)
from tests.support.broker import free_port

SETTLE_S = 30.0


def _start(database: Database, client_id: str, group: str, writers: int) -> tuple:
    port = free_port()
    env = {
        **database.env,
        "INGESTD_METRICS_PORT": str(port),
        "INGESTD_CLIENT_ID": client_id,
        "N_MTD_WRITE_THREADS": str(writers),
        "INGESTD_SHARE_GROUP": group,
    }
    return (*start_ingestd(env), port)


def _stop(daemons: list[tuple]) -> None:
    for process, *_ in daemons:
        process.send_signal(signal.SIGTERM)
    for process, *_ in daemons:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def measure_drain(instances: int, writers: int = 1, cap_cores: float | None = None) -> dict:
    """Drain rate of `instances`; with cap_cores each instance gets that much CPU, no more."""
    database = Database("postgres")
    caps = contextlib.ExitStack()
    daemons: list[tuple] = []
    group = f"drain{secrets.token_hex(3)}"
    client_ids = [f"ingestd-drain-{secrets.token_hex(4)}" for _ in range(instances)]
    try:
        # Subscribe once, so the broker keeps a session per instance, then go away.
        daemons = [_start(database, cid, group, writers) for cid in client_ids]
        wait_subscribed(daemons)
        _stop(daemons)
        publisher = _publish(database.connector, database.first_id, 1)
        published = json.loads(publisher.communicate(timeout=300)[0])
        assert database.stored() == 0
        daemons = [_start(database, cid, group, writers) for cid in client_ids]
        applied = []
        if cap_cores is not None:
            for process, *_ in daemons:
                cap = caps.enter_context(cpu_cap.capped(cap_cores))
                cap.add(process.pid)
                applied.append(cap)
        first_at = last_change = None
        stored, started = 0, time.monotonic()
        while stored < MESSAGES:
            now_stored = database.stored()
            now = time.monotonic()
            if now_stored and first_at is None:
                first_at = now
            if now_stored != stored:
                stored, last_change = now_stored, now
            elif now - (last_change or started) > SETTLE_S:
                break
            time.sleep(0.02)
        elapsed = (last_change - first_at) if last_change and first_at else 0.0
        # Let a duplicate or a late message land before counting (and before the stop).
        time.sleep(1.0)
        counts = ingestd_counts([port for _, _, port in daemons])
        counts["errors"] = counts.get("errors", []) + _publisher_errors(published)
        rows = check_rows(database.engine, database.first_id, DATAPOINTS, MESSAGES)
        throttled = [cap.nr_throttled() for cap in applied]
        return {
            "msgs_per_s": round(stored / elapsed, 1) if elapsed else 0.0,
            "published": MESSAGES,
            "finished": stored >= MESSAGES,
            "unfinished": f"{stored} of {MESSAGES} stored, none more for {SETTLE_S:.0f} s",
            "stored": stored,
            "lost": MESSAGES - stored,
            **counts,
            **rows,
            "capped": cap_cores is not None,
            "nr_throttled": min(throttled) if throttled else None,
            "publisher_msgs_per_s": round(published["msgs_per_s"], 1),
        }
    finally:
        _stop(daemons)
        caps.close()
        for cid in client_ids:
            _drop_session(cid)
        database.drop()


# Each capped instance stands in for a small host of its own; a quarter of a core leaves the
# machine's two cores enough for Mosquitto, PostgreSQL and both instances at once.
CAPPED_CORES = 0.25


def _compare(label: str, rounds: int, cap_cores: float | None) -> dict:
    """One and two instances alternate, so both see the same machine."""
    one, two = [], []
    found = []
    for number in range(1, rounds + 1):
        one.append(measure_drain(1, writers=2, cap_cores=cap_cores))
        two.append(measure_drain(2, writers=1, cap_cores=cap_cores))
        found += problems(f"{label} one instance (round {number})", one[-1])
        found += problems(f"{label} two instances (round {number})", two[-1])
    best_one = max(one, key=lambda r: r["msgs_per_s"])
    best_two = max(two, key=lambda r: r["msgs_per_s"])
    return {
        f"{label}_one_instance_msgs_per_s": best_one["msgs_per_s"],
        f"{label}_two_instances_msgs_per_s": best_two["msgs_per_s"],
        f"{label}_two_vs_one": round(best_two["msgs_per_s"] / best_one["msgs_per_s"], 3)
        if best_one["msgs_per_s"]
        else None,
        f"{label}_lost": sum(r["lost"] for r in one + two),
        **({f"{label}_nr_throttled": [r["nr_throttled"] for r in one + two]} if cap_cores else {}),
        "problems": found,
    }


def run(rounds: int = ROUNDS) -> dict:
    """Uncapped: what this machine does. Capped: what a second host adds."""
    results = _compare("drain_pg_qos1", rounds, cap_cores=None)
    if cpu_cap.available():
        capped = _compare("drain_pg_qos1_capped", rounds, cap_cores=CAPPED_CORES)
        capped["problems"] = results["problems"] + capped["problems"]
        results.update(capped)
    else:
        results["drain_pg_qos1_capped"] = "skipped: no writable cgroup cpu controller"
    return results
