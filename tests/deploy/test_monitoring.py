"""The monitoring bundle (compose profile `monitoring`) against the real processes.

Every metric name of the Grafana dashboards and the alert rules must exist in the /metrics of
a running ingestd and readapi (two workers); promtool checks the configuration and unit-tests
the rules; a real Prometheus, started through the container's start.sh with the shipped
configuration pointed at the two processes, scrapes both (readapi with the metrics account)
and evaluates every dashboard query.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.service_processes import REPO, get, ingestd, poll, readapi
from tests.support.broker import free_port

MONITORING = REPO / "deploy" / "monitoring"
PROMETHEUS_DIR = MONITORING / "prometheus"
DASHBOARDS = MONITORING / "grafana" / "dashboards"
METRICS_USER = ("prometheus", "metrics-test-password")
# Made by Prometheus itself for every target, not by the processes.
PROMETHEUS_MADE = {"up"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
PROMQL_WORDS |= {"unless", "bool", "offset", "inf", "nan"}


def tool(name: str) -> str:
    found = shutil.which(name)
    # Not a skip: a missing tool must fail CI (apt-get install prometheus provides both).
    assert found is not None, f"{name} is not installed (apt-get install prometheus)"
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors, $__rate_interval
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every series name the exposition has or declares (a labelled counter with no
    sample yet still declares its _total, a histogram its _bucket, _count and _sum)."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {sample.name for sample in family.samples}
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
            "summary": ("", "_count", "_sum"),
        }.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def dashboard_queries() -> list[str]:
    found = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(DASHBOARDS.glob("*.json")):
        walk(json.loads(path.read_text()))
    return found


def rule_queries() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_metric_name_extraction_and_the_check_can_fail():
    expr = (
        "histogram_quantile(0.99, sum by (instance, le) (rate(ingestd_lag_seconds_bucket[5m])))"
        ' > 5 and on(instance) up{job=~"ingestd|readapi"} == 0'
    )
    assert metric_names(expr) == {"ingestd_lag_seconds_bucket", "up"}
    exposition = "# TYPE a_total counter\n# TYPE h histogram\nh_count 1\nh_sum 2\n"
    exposed = exposed_names(exposition)
    assert {"a_total", "h_bucket", "h_count", "h_sum"} <= exposed
    assert "a_missing_total" not in exposed and "h" not in exposed


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> Iterator[dict[str, str]]:
    """ingestd and readapi (two workers) on one fresh SQLite database and the test broker."""
    from tests.conftest import base_env

    directory = tmp_path_factory.mktemp("monitoring")
    env = base_env(BEMCOM_DATA_DIR=str(directory / "data"), LOGLEVEL="INFO")
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "readapi",
            "createuser",
            METRICS_USER[0],
            "--permission",
            "view_datapoint",
        ],
        cwd=REPO,
        env={**os.environ, **env},
        input=METRICS_USER[1] + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    with (
        ingestd(env, directory / "ingestd.log") as (_ingestd, ingestd_metrics),
        readapi(env, directory / "readapi.log", workers=2) as (readapi_process, readapi_url),
    ):
        yield {
            "ingestd": ingestd_metrics,
            "readapi": f"{readapi_url}/metrics/",
            "readapi_pid": str(readapi_process.pid),
            "directory": str(directory),
        }


def both_expositions(services: dict[str, str]) -> str:
    ingestd_text = get(services["ingestd"])
    assert ingestd_text is not None
    # readapi: every worker must have sampled its memory once (at its start).
    readapi_text = poll(
        lambda: (
            (text := get(services["readapi"], METRICS_USER))
            and text.count("readapi_worker_resident_memory_bytes{") >= 2
            and text
        ),
        what="both readapi workers reporting their memory",
    )
    return ingestd_text + "\n" + readapi_text


def test_every_metric_of_the_dashboards_and_rules_exists(services):
    exposed = exposed_names(both_expositions(services)) | PROMETHEUS_MADE
    used = {name for expr in dashboard_queries() + rule_queries() for name in metric_names(expr)}
    # What the issue asks the dashboard and the rules to show, so the check is not vacuous.
    assert {
        "ingestd_messages_stored_total",
        "ingestd_messages_rejected_total",
        "ingestd_queue_depth",
        "ingestd_lag_seconds_bucket",
        "ingestd_mqtt_connected",
        "ingestd_database_errors_total",
        "ingestd_database_connected",
        "readapi_http_requests_total",
        "readapi_http_request_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "readapi_worker_resident_memory_bytes",
    } <= used
    assert sorted(used - exposed) == []


def test_readapi_reports_each_workers_memory(services):
    children = Path(f"/proc/{services['readapi_pid']}/task/{services['readapi_pid']}/children")
    workers = {pid for pid in children.read_text().split()}
    # Both workers have sampled once they have started; on a loaded machine the second may
    # still be starting when the first answers.
    deadline = time.monotonic() + 30
    while True:
        samples = [
            sample
            for family in text_string_to_metric_families(both_expositions(services))
            for sample in family.samples
            if sample.name == "readapi_worker_resident_memory_bytes"
        ]
        by_pid = {sample.labels["pid"]: sample.value for sample in samples}
        if (len(by_pid) == 2 and all(by_pid.values())) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert set(by_pid) <= workers and len(by_pid) == 2, (by_pid, workers)
    for pid, value in by_pid.items():
        status = Path(f"/proc/{pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
        # Sampled every 5 s: near the worker's current RSS, not some other process's.
        assert 0.5 * rss < value < 2 * rss, (pid, value, rss)


def test_promtool_accepts_the_configuration_and_the_rules_fire_as_written():
    promtool = tool("promtool")
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ):
        done = subprocess.run(
            [promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "SUCCESS" in done.stdout + done.stderr


def test_start_scripts_refuse_to_run_without_their_password(tmp_path: Path):
    for script, variable in (
        (PROMETHEUS_DIR / "start.sh", "BEMCOM_METRICS_PASSWORD"),
        (MONITORING / "grafana" / "start.sh", "GF_SECURITY_ADMIN_PASSWORD"),
    ):
        env = {"PATH": os.environ["PATH"], variable: ""}
        done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
        assert done.returncode == 2 and "set " in done.stderr, (script, done.stderr)
    # With it, Grafana's own entrypoint is run with the arguments.
    done = subprocess.run(
        ["sh", str(MONITORING / "grafana" / "start.sh"), "a", "b"],
        env={"PATH": os.environ["PATH"], "GF_SECURITY_ADMIN_PASSWORD": "x"}
        | {"BEMCOM_GRAFANA_RUN": "/bin/echo"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout == "a b\n"


def local_prometheus_config(services: dict[str, str], directory: Path, password_file: Path):
    """The shipped prometheus.yml, pointed at the two test processes, scraping every second."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    addresses = {
        "ingestd:9464": urllib.parse.urlsplit(services["ingestd"]).netloc,
        "readapi:8080": urllib.parse.urlsplit(services["readapi"]).netloc,
    }
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [addresses[target] for target in static["targets"]]
        if "basic_auth" in job:
            assert job["basic_auth"]["username"] == METRICS_USER[0]
            assert job["basic_auth"]["password_file"] == "/prometheus/metrics-password"
            job["basic_auth"]["password_file"] = str(password_file)
    shutil.copy(PROMETHEUS_DIR / "alerts.yml", directory / "alerts.yml")
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    return directory / "prometheus.yml"


def prometheus_api(port: int, path: str, **params: str):
    query = urllib.parse.urlencode(params)
    body = get(f"http://127.0.0.1:{port}/api/v1/{path}?{query}")
    return json.loads(body) if body else None


def test_a_real_prometheus_scrapes_both_and_evaluates_every_query(services, tmp_path: Path):
    binary = tool("prometheus")
    password_file = tmp_path / "metrics-password"
    config = local_prometheus_config(services, tmp_path, password_file)
    port = free_port()
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                "sh",
                str(PROMETHEUS_DIR / "start.sh"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            env={
                "PATH": os.environ["PATH"],
                "BEMCOM_METRICS_PASSWORD": METRICS_USER[1],
                "BEMCOM_METRICS_PASSWORD_FILE": str(password_file),
                "BEMCOM_PROMETHEUS_BINARY": binary,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def targets_up():
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            answer = prometheus_api(port, "targets")
            if not answer:
                return False
            health = {t["labels"]["job"]: t for t in answer["data"]["activeTargets"]}
            return set(health) == {"ingestd", "readapi"} and all(
                t["health"] == "up" for t in health.values()
            )

        poll(targets_up, 60, "both targets scraped successfully")
        assert oct(password_file.stat().st_mode & 0o777) == "0o600"
        # Every dashboard query is valid PromQL to Prometheus, and the gauges have data.
        for expr in dashboard_queries():
            answer = prometheus_api(port, "query", query=expr.replace("$__rate_interval", "1m"))
            assert answer and answer["status"] == "success", (expr, answer)
        for expr in ("ingestd_mqtt_connected", "ingestd_database_connected"):
            value = poll(
                lambda expr=expr: (
                    (prometheus_api(port, "query", query=expr) or {}).get("data", {}).get("result")
                ),
                what=f"{expr} in Prometheus",
            )
            assert value[0]["value"][1] == "1", (expr, value)
        workers = poll(
            lambda: (
                len(
                    prometheus_api(port, "query", query="readapi_worker_resident_memory_bytes")[
                        "data"
                    ]["result"]
                )
                == 2
            ),
            what="both readapi workers' memory in Prometheus",
        )
        assert workers
        rules = prometheus_api(port, "rules")
        loaded = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
        assert loaded == {
            rule["alert"]
            for group in yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
            for rule in group["rules"]
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_compose_grafana_and_prometheus_files_agree():
    """What no engine here can run, checked across the files: mounts, uids, names, ports."""
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    services = compose["services"]
    grafana = services["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    provider = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "dashboards" / "bemcom.yml").read_text()
    )
    assert mounts["./monitoring/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    assert mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert grafana["entrypoint"][-1] == mounts["./monitoring/grafana/start.sh"]
    for variable in ("HOST", "PORT", "USER", "PASSWORD", "DBNAME"):
        assert f"DJANGOAPIDB_{variable}" in grafana["environment"]
    source = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert source["url"] == "http://prometheus:9090"
    referenced = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "prometheus" and "uid" in node:
                referenced.add(node["uid"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads((DASHBOARDS / "bemcom-service.json").read_text()))
    assert referenced == {source["uid"]}
    # Prometheus: its files mounted where start.sh and prometheus.yml expect them, and the
    # targets are the services' names and ports, readapi's name an allowed host.
    prometheus = services["prometheus"]
    assert "./monitoring/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert prometheus["entrypoint"] == ["/bin/sh", "/etc/prometheus/start.sh"]
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    assert targets == {"ingestd": "ingestd:9464", "readapi": "readapi:8080"}
    readapi_env = services["readapi"]["environment"]
    assert "readapi" in json.loads(readapi_env["DJANGO_ALLOWED_HOSTS"])
    assert (
        readapi_env["BEMCOM_METRICS_PASSWORD"]
        == prometheus["environment"]["BEMCOM_METRICS_PASSWORD"]
    )


def memory_pids(services: dict[str, str]) -> set[int]:
    text = get(services["readapi"], METRICS_USER) or ""
    return {
        int(sample.labels["pid"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "readapi_worker_resident_memory_bytes"
    }


def uvicorn_workers(pid: str) -> set[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    }


def test_a_killed_workers_memory_is_forgotten(services):
    # Last in this module: it kills one of the shared readapi's workers.
    import signal

    workers = poll(lambda: len(w := uvicorn_workers(services["readapi_pid"])) == 2 and w)
    poll(lambda: memory_pids(services) == workers, what="both workers' memory reported")
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)  # no shutdown hook runs: its gauge file stays behind
    # uvicorn starts a replacement; /metrics/ reports the two living workers, not the dead one.
    poll(
        lambda: (
            len(living := uvicorn_workers(services["readapi_pid"])) == 2
            and victim not in living
            and memory_pids(services) == living
        ),
        60,
        "the replacement reported and the killed worker forgotten",
    )
