"""`make soak`: the whole service under steady load, then overload, with concurrent REST reads.

python -m tests.soak [--minutes 30] [--burst-minutes 5] [--burst-rate R] [--pi]
                     [--backend postgres|sqlite]

A site is taken as 1,000 datapoints every 10 s (100 messages/s). Phase 1 publishes QoS 1 at
three sites' rate for --minutes while a bounded client reads the REST API; phase 2 publishes
at ten times that for --burst-minutes. Then the load stops and everything must be stored.
--pi pins ingestd and readapi to one core (taskset) on SQLite at one site's rate and, after
the steady phase, steps the rate up to find the headroom: the highest rate whose lag stays
under a second. Only loopback addresses are used; every loop is bounded in time.

Prints a line per sample and, last, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.bench.ingest_bench import DATAPOINTS, Database, _metric, _python
from tests.support.broker import MosquittoProcess, free_port

SITE_RATE = 100.0  # 1,000 datapoints every 10 s
PUBLISHER_RATE = 4000.0  # QoS 1 messages/s one paced publisher is asked for, at most


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (readapi's workers)."""
    total = _rss_mb(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            total += _tree_rss_mb(int(child))
    return total


Buckets = list[tuple[float, float]]


def _lag_buckets(port: int) -> Buckets:
    """ingestd's lag histogram (publish -> commit): (upper bound, cumulative count) pairs."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            lines = response.read().decode().splitlines()
    except OSError:
        return []
    buckets = []
    for line in lines:
        if line.startswith("ingestd_lag_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append(
                (float("inf") if bound == "+Inf" else float(bound), float(line.split()[1]))
            )
    return buckets


def lag_quantile(now: Buckets, before: Buckets, quantile: float) -> float | None:
    """An upper bound of the lag quantile of the messages stored between two readings.

    The histogram counts since ingestd started; the difference of two readings is the
    histogram of that interval alone, so a sample or a phase reports its own lag.
    """
    if not now:
        return None
    earlier = dict(before)
    interval = [(bound, count - earlier.get(bound, 0.0)) for bound, count in now]
    total = interval[-1][1]
    if total <= 0:
        return None
    for bound, count in interval:
        if count >= quantile * total:
            return bound
    return float("inf")


class RestLoad(threading.Thread):
    """A bounded REST client: a few requests per second, latencies recorded."""

    def __init__(self, base: str, token: str, first_id: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.first_id, self.interval = base, token, first_id, 1 / rate
        self.latencies_ms: list[float] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.wait(self.interval):
            dp = self.first_id + n % DATAPOINTS
            since = int(time.time() * 1000) - 60_000
            path = (
                "/datapoint/last_value/"
                if n % 2
                else f"/datapoint/{dp}/value/?timestamp__gte={since}"
            )
            request = urllib.request.Request(
                self.base + path, headers={"Authorization": f"Bearer {self.token}"}
            )
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
            except (urllib.error.URLError, OSError):
                self.errors += 1
            n += 1


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


class Service:
    """ingestd and readapi as subprocesses on one database, optionally pinned to a core."""

    def __init__(self, database: Database, broker_port: int, pin: bool) -> None:
        self.metrics_port = free_port()
        self.http_port = free_port()
        self.env = {
            **database.env,
            "MQTT_BROKER_PORT": str(broker_port),
            "INGESTD_METRICS_PORT": str(self.metrics_port),
            "INGESTD_CLIENT_ID": f"soak-{os.getpid()}-{self.metrics_port}",
            "BEMCOM_HTTP_PORT": str(self.http_port),
            "DJANGO_ALLOWED_HOSTS": '["127.0.0.1", "localhost"]',
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bemcom-soak-prom-"),
        }
        prefix = ["taskset", "-c", "0"] if pin and shutil.which("taskset") else []
        self.ingestd = subprocess.Popen(
            [*prefix, sys.executable, "-m", "ingestd"], env=self.env, stderr=subprocess.DEVNULL
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "readapi",
                "createuser",
                "soak",
                "--password",
                "soak-password",
                "--superuser",
            ],
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.token = (
            subprocess.run(
                [sys.executable, "-m", "readapi", "createtoken", "soak"],
                env=self.env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .split()[-1]
        )
        self.readapi = subprocess.Popen(
            [*prefix, sys.executable, "-m", "readapi"], env=self.env, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while _metric(self.metrics_port, "ingestd_subscribed") != 1.0 or not self._http_up():
            if time.monotonic() > deadline:
                raise RuntimeError("ingestd or readapi did not come up within 60 s")
            time.sleep(0.2)

    def _http_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/health/live", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> None:
        for process in (self.readapi, self.ingestd):
            process.terminate()
        for process in (self.readapi, self.ingestd):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def run_phase(name, service, database, broker_port, rate, seconds, rest_rate, samples):
    """Publish at `rate` for `seconds` while sampling; returns the phase's figures."""
    rest = RestLoad(service.base, service.token, database.first_id, rest_rate)
    rest.start()
    # One paho publisher manages a few thousand QoS 1 messages a second; above that several
    # share the rate, each on its own datapoints (two on one datapoint could stamp the same
    # millisecond, and the second message would replace the first).
    count = max(1, math.ceil(rate / PUBLISHER_RATE))
    per_publisher = DATAPOINTS // count
    publishers = [
        _python(
            "-m",
            "tests.soak.paced_publisher",
            database.connector,
            str(database.first_id + k * per_publisher),
            str(per_publisher),
            str(rate / count),
            str(seconds),
            str(broker_port),
            "1",
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(count)
    ]
    rss_ingestd, rss_readapi, depths = [], [], []
    phase_start = previous = _lag_buckets(service.metrics_port)
    while any(publisher.poll() is None for publisher in publishers):
        time.sleep(5)
        buckets = _lag_buckets(service.metrics_port)
        sample = {
            "phase": name,
            "t": round(time.monotonic(), 1),
            "ingestd_rss_mb": round(_rss_mb(service.ingestd.pid), 1),
            "readapi_rss_mb": round(_tree_rss_mb(service.readapi.pid), 1),
            "queue_depth": _metric(service.metrics_port, "ingestd_queue_depth"),
            "stored": database.stored(),
            "lag_p99_s": lag_quantile(buckets, previous, 0.99),
        }
        previous = buckets
        samples.append(sample)
        print(json.dumps(sample), flush=True)
        rss_ingestd.append(sample["ingestd_rss_mb"])
        rss_readapi.append(sample["readapi_rss_mb"])
        depths.append(sample["queue_depth"] or 0)
    reports = [json.loads(publisher.communicate()[0]) for publisher in publishers]
    published = {
        "published": sum(r["published"] for r in reports),
        "unacknowledged": sum(r["unacknowledged"] for r in reports),
    }
    rest.stop.set()
    rest.join()
    quarter = max(1, len(rss_ingestd) // 4)
    return {
        "rate": rate,
        "seconds": seconds,
        "publishers": count,
        "published_per_s": round(published["published"] / seconds, 1),
        "published": published["published"],
        "unacknowledged_by_broker": published["unacknowledged"],
        "ingestd_rss_mb_first_quarter": round(statistics.mean(rss_ingestd[:quarter]), 1),
        "ingestd_rss_mb_last_quarter": round(statistics.mean(rss_ingestd[-quarter:]), 1),
        "ingestd_rss_mb_max": max(rss_ingestd),
        "readapi_rss_mb_max": max(rss_readapi),
        "queue_depth_max": max(depths),
        "lag_p99_s_upper_bound": lag_quantile(
            _lag_buckets(service.metrics_port), phase_start, 0.99
        ),
        "lag_p99_s_worst_sample": max(
            (x["lag_p99_s"] for x in samples if x["phase"] == name and x["lag_p99_s"]),
            default=None,
        ),
        "rest_requests": len(rest.latencies_ms),
        "rest_errors": rest.errors,
        "rest_p50_ms": _percentile(rest.latencies_ms, 0.5),
        "rest_p99_ms": _percentile(rest.latencies_ms, 0.99),
    }


def drain(database: Database, expected: int, timeout: float = 600) -> tuple[int, float]:
    started = time.monotonic()
    stored = database.stored()
    while stored < expected and time.monotonic() - started < timeout:
        time.sleep(1)
        stored = database.stored()
    return stored, round(time.monotonic() - started, 1)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--burst-minutes", type=float, default=5.0)
    parser.add_argument(
        "--burst-rate",
        type=float,
        default=None,
        help="msgs/s of the burst (default ten times the steady rate); above the ingest "
        "ceiling a backlog builds at the broker and must be stored once the load stops",
    )
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pi", action="store_true", help="one core, SQLite, a site's rate")
    parser.add_argument("--rest-rate", type=float, default=10.0, help="REST requests/s")
    args = parser.parse_args()
    backend = "sqlite" if args.pi else args.backend
    samples: list[dict] = []
    results: dict = {"mode": "pi" if args.pi else "soak", "backend": backend}
    with tempfile.TemporaryDirectory(prefix="bemcom-soak-broker-") as directory:
        broker = MosquittoProcess(Path(directory))
        broker.start()
        database = Database(backend)
        service = Service(database, broker.port, pin=args.pi)
        published = 0
        try:
            steady_rate = SITE_RATE if args.pi else 3 * SITE_RATE
            steady = run_phase(
                "steady",
                service,
                database,
                broker.port,
                steady_rate,
                args.minutes * 60,
                args.rest_rate,
                samples,
            )
            published += steady["published"]
            results["steady"] = steady
            if args.pi:
                results["headroom"] = find_headroom(service, database, broker.port, samples)
                published += results["headroom"].pop("published")
            else:
                burst = run_phase(
                    "burst",
                    service,
                    database,
                    broker.port,
                    args.burst_rate or 10 * steady_rate,
                    args.burst_minutes * 60,
                    args.rest_rate,
                    samples,
                )
                published += burst["published"]
                results["burst"] = burst
            stored, seconds = drain(database, published)
            results.update(
                published=published,
                stored=stored,
                lost=published - stored,
                drain_seconds=seconds,
                ingestd_alive=service.ingestd.poll() is None,
                readapi_alive=service.readapi.poll() is None,
            )
        finally:
            service.stop()
            database.drop()
            broker.stop()
    print(json.dumps(results), flush=True)
    return 0 if results.get("lost") == 0 else 1


def find_headroom(service, database, broker_port, samples) -> dict:
    """Double the rate, one minute a step, while the step's lag p99 stays under a second.

    Ends at the first step the service does not sustain ("service": the headroom lies between
    the last two rates), or the first the load generators cannot publish ("load generator":
    the headroom is at least the last rate sustained; this machine cannot show more).
    """
    sustained, published = SITE_RATE, 0
    limited_by, failed_at = "steps", None
    for multiple in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        rate = SITE_RATE * multiple
        before = database.stored()
        phase = run_phase(
            f"headroom-{rate:.0f}", service, database, broker_port, rate, 60, 2.0, samples
        )
        published += phase["published"]
        if phase["published_per_s"] < 0.9 * rate:
            limited_by, failed_at = "load generator", phase["published_per_s"]
            break
        # Lag over the minute: the queue must not have grown and rows kept pace.
        kept_pace = database.stored() - before >= 0.95 * phase["published"]
        lag = phase["lag_p99_s_upper_bound"]
        if not kept_pace or lag is None or lag > 1.0 or (phase["queue_depth_max"] or 0) > rate:
            limited_by, failed_at = "service", rate
            break
        sustained = phase["published_per_s"]
        drain(database, before + phase["published"], timeout=120)
    return {
        "sustained_msgs_per_s": sustained,
        "site_multiple": round(sustained / SITE_RATE, 1),
        "limited_by": limited_by,
        "next_step_msgs_per_s": failed_at,
        "published": published,
    }


if __name__ == "__main__":
    sys.exit(main())
