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
from tests.bench.ingest_bench import (
    MESSAGES,
    Database,
    _drop_session,
    _metric,
    _publish,
    _python,
)
from tests.support.broker import free_port


def _start(database: Database, client_id: str, group: str, writers: int) -> tuple:
    port = free_port()
    env = {
        **database.env,
        "INGESTD_METRICS_PORT": str(port),
        "INGESTD_CLIENT_ID": client_id,
        "N_MTD_WRITE_THREADS": str(writers),
        "INGESTD_SHARE_GROUP": group,
    }
    return _python("-m", "ingestd", env=env, stderr=subprocess.PIPE, text=True), port


def _wait_subscribed(daemons: list[tuple]) -> None:
    deadline = time.monotonic() + 30
    for process, port in daemons:
        while _metric(port, "ingestd_subscribed") != 1.0:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("ingestd did not subscribe: " + (process.stderr.read() or ""))
            time.sleep(0.1)


def _stop(daemons: list[tuple]) -> None:
    for process, _ in daemons:
        process.send_signal(signal.SIGTERM)
    for process, _ in daemons:
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
        _wait_subscribed(daemons)
        _stop(daemons)
        publisher = _publish(database.connector, database.first_id, 1)
        published = json.loads(publisher.communicate(timeout=300)[0])
        assert database.stored() == 0
        daemons = [_start(database, cid, group, writers) for cid in client_ids]
        if cap_cores is not None:
            for process, _ in daemons:
                caps.enter_context(cpu_cap.capped(cap_cores)).add(process.pid)
        first_at = last_change = None
        stored = 0
        while stored < MESSAGES:
            now_stored = database.stored()
            now = time.monotonic()
            if now_stored and first_at is None:
                first_at = now
            if now_stored != stored:
                stored, last_change = now_stored, now
            elif last_change is not None and now - last_change > 30:
                break
            time.sleep(0.02)
        elapsed = last_change - first_at
        return {
            "msgs_per_s": round(stored / elapsed, 1) if elapsed else 0.0,
            "stored": stored,
            "lost": MESSAGES - stored,
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
    for _ in range(rounds):
        one.append(measure_drain(1, writers=2, cap_cores=cap_cores))
        two.append(measure_drain(2, writers=1, cap_cores=cap_cores))
    best_one = max(one, key=lambda r: r["msgs_per_s"])
    best_two = max(two, key=lambda r: r["msgs_per_s"])
    return {
        f"{label}_one_instance_msgs_per_s": best_one["msgs_per_s"],
        f"{label}_two_instances_msgs_per_s": best_two["msgs_per_s"],
        f"{label}_two_vs_one": round(best_two["msgs_per_s"] / best_one["msgs_per_s"], 3),
        f"{label}_lost": sum(r["lost"] for r in one + two),
    }


def run(rounds: int = 2) -> dict:
    """Uncapped: what this machine does. Capped: what a second host adds."""
    results = _compare("drain_pg_qos1", rounds, cap_cores=None)
    if cpu_cap.available():
        results.update(_compare("drain_pg_qos1_capped", rounds, cap_cores=CAPPED_CORES))
    else:
        results["drain_pg_qos1_capped"] = "skipped: no writable cgroup cpu controller"
    return results
