"""`make smoke`: what a user installs must start. Run with any Python >= 3.11, no venv needed:

    python3 tests/deploy/smoke_clean_install.py [--venv DIR]

1. A fresh virtual environment in a temporary directory: `requirements.lock` (every file
   checked against its hash), then the project itself, not editable and without
   dependencies, so nothing else can slip in (`--venv DIR` tests an existing one instead).
2. The real `python -m readapi` and `python -m ingestd` of that venv, run from outside the
   checkout, against a fresh PostgreSQL database on 127.0.0.1:5432 and the Mosquitto on
   127.0.0.1:1883, as the README describes: a connector created over REST announces a
   datapoint on MQTT, it is activated over REST, a value published on MQTT is read back over
   REST, the superuser from DJANGO_SUPERUSER_* logs in to /admin/, and every log line of
   both processes is JSON (BEMCOM_LOG_JSON=TRUE).
3. `make run`'s launcher (`python -m deploy.run`) from the same venv: it starts, readapi
   listens on 127.0.0.1 only, its banner's account reads the demo datapoints, Ctrl-C stops it.

Prints the install time and the venv's size. Exit code 0 when everything held, 1 otherwise.
The processes, the database and the temporary directory are removed in every case.
Only the standard library here; the venv's own Python talks MQTT and creates the database.
"""

from __future__ import annotations

import argparse
import base64
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.support.listening import listening_addresses  # noqa: E402

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
START_TIMEOUT = 120  # seconds; a loaded 2-core CI machine starts two uvicorn workers slowly


class SmokeFailure(Exception):
    pass


def step(message: str) -> None:
    print(f"smoke: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll(check: Callable[[], object], timeout: float, what: str, alive=None) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if alive is not None:
            alive()
        time.sleep(0.3)
    raise SmokeFailure(f"timed out after {timeout:g} s: {what}")


def directory_mib(path: Path) -> float:
    total = sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() or f.is_symlink())
    return total / 1_048_576


# --- the clean install --------------------------------------------------------------------


def project_source(into: Path) -> Path:
    """A copy of what the package is built from, so the build leaves nothing in the checkout."""
    source = into / "src"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    found = tomllib.loads((REPO / "pyproject.toml").read_text())
    for pattern in found["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return source


def install(venv: Path, work: Path) -> None:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "install", "-q", "--require-hashes", "-r", str(REPO / "requirements.lock")],
        check=True,
    )
    subprocess.run([*pip, "install", "-q", "--no-deps", str(project_source(work))], check=True)
    seconds = time.monotonic() - started
    step(f"clean install: {seconds:.1f} s, venv {directory_mib(venv):.0f} MiB of files ({venv})")


# --- helpers run by the venv's own Python (psycopg and paho come from the lock) -------------

DATABASE_SCRIPT = """
import sys, psycopg
action, name, host, port, user = sys.argv[1:]
with psycopg.connect(host=host, port=int(port), user=user, dbname="postgres",
                     autocommit=True) as connection:
    if action == "create":
        connection.execute(f'CREATE DATABASE "{name}"')
    else:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
"""

# A connector as the protocol describes it: announce a sensor (retained), wait for the
# datapoint map that names its value topic, publish one value there (QoS 1), print the topic.
CONNECTOR_SCRIPT = """
import json, sys, threading, time
import paho.mqtt.client as mqtt
host, port, connector, key, value = sys.argv[1:]
mapped = {}
arrived = threading.Event()
def on_message(client, userdata, message):
    topic = json.loads(message.payload or b"{}").get("sensor", {}).get(key)
    if topic:
        mapped["topic"] = topic
        arrived.set()
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{connector}-smoke")
client.on_message = on_message
client.connect(host, int(port))
client.subscribe(f"{connector}/datapoint_map", qos=1)
client.loop_start()
client.publish(f"{connector}/available_datapoints",
               json.dumps({"sensor": {key: value}, "actuator": {}}), qos=1, retain=True
               ).wait_for_publish(30)
print("announced", flush=True)
if not arrived.wait(120):
    sys.exit("no datapoint map named the sensor within 120 s")
# A number, as a meter sends it; the REST API answers it as the text "21.5".
payload = json.dumps({"value": float(value), "timestamp": int(time.time() * 1000)})
client.publish(mapped["topic"], payload, qos=1).wait_for_publish(30)
# Nothing of this run stays retained on the shared broker.
for topic in (f"{connector}/available_datapoints", f"{connector}/datapoint_map"):
    client.publish(topic, b"", qos=1, retain=True).wait_for_publish(30)
client.loop_stop()
client.disconnect()
print(mapped["topic"], flush=True)
"""

# ingestd keeps a persistent MQTT session (30 days) on the shared broker: connecting once
# with its client id and a clean start, then leaving with no expiry, ends it.
END_SESSION_SCRIPT = """
import sys, threading
import paho.mqtt.client as mqtt
host, port, client_id = sys.argv[1:]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                     protocol=mqtt.MQTTv5)
connected = threading.Event()
client.on_connect = lambda *args: connected.set()
client.connect(host, int(port), clean_start=True)
client.loop_start()
if not connected.wait(30):
    sys.exit("the broker did not answer")
client.disconnect()
client.loop_stop()
"""


def venv_python(venv: Path, script: str, *args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SmokeFailure(f"venv helper failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


# --- HTTP with only the standard library ---------------------------------------------------


class Http:
    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}"}

    def request(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.auth)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except OSError:
            return 0, None
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")


# --- the two processes ----------------------------------------------------------------------


class Service:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.out, self.err = cwd / f"{name}.out", cwd / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)

    def text(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def alive(self) -> None:
        if self.process.poll() is not None:
            tail = "\n".join(self.text().splitlines()[-25:])
            raise SmokeFailure(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        return self.process.returncode


def non_json_lines(text: str) -> list[str]:
    bad = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            bad.append(line)
            continue
        if not isinstance(event, dict) or "event" not in event:
            bad.append(line)
    return bad


def admin_login(base: str, username: str, password: str) -> None:
    """Log in to /admin/ as a browser does: the page's CSRF token, our Origin, the cookie."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with browser.open(f"{base}/admin/login", timeout=30) as page:
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
    if not found:
        raise SmokeFailure("the admin login page has no CSRF token")
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrf_token": found.group(1)}
    ).encode()
    request = urllib.request.Request(f"{base}/admin/login", form, {"Origin": base})
    with browser.open(request, timeout=30) as landing:  # the 302 is followed to the home page
        home, url = landing.read().decode(), landing.geturl()
    if not url.rstrip("/").endswith("/admin") or "Logout" not in home:
        raise SmokeFailure(f"admin login did not reach the home page (at {url})")


def run_service_checks(venv: Path, work: Path) -> None:
    database = f"bemcom_smoke_{secrets.token_hex(5)}"
    connector, key, value = f"smoke-{secrets.token_hex(4)}", "flow_temp", "21.5"
    http_port, metrics_port = free_port(), free_port()
    password = secrets.token_urlsafe(12)
    pg = [PG["host"], str(PG["port"]), PG["user"]]
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "DJANGOAPIDB_HOST": PG["host"],
        "DJANGOAPIDB_PORT": str(PG["port"]),
        "DJANGOAPIDB_USER": PG["user"],
        "DJANGOAPIDB_DBNAME": database,
        "MQTT_BROKER_HOST": MQTT_HOST,
        "MQTT_BROKER_PORT": str(MQTT_PORT),
        "BEMCOM_HTTP_PORT": str(http_port),
        "INGESTD_METRICS_PORT": str(metrics_port),
        "INGESTD_CLIENT_ID": f"{connector}-ingestd",
        "BEMCOM_LOG_JSON": "TRUE",
        "LOGLEVEL": "INFO",
        "ACTIVATE_HISTORY_EXTENSION": "TRUE",
        "DJANGO_SUPERUSER_USERNAME": "smoke-admin",
        "DJANGO_SUPERUSER_PASSWORD": password,
        "DJANGO_SUPERUSER_EMAIL": "smoke@example.org",
    }
    python = str(venv / "bin" / "python")
    venv_python(venv, DATABASE_SCRIPT, "create", database, *pg)
    services: list[Service] = []
    try:
        # From a directory outside the checkout: the venv's installed package is what runs.
        services.append(Service("readapi", [python, "-m", "readapi"], env, work))
        services.append(Service("ingestd", [python, "-m", "ingestd"], env, work))
        readapi, ingestd = services

        def alive() -> None:
            readapi.alive()
            ingestd.alive()

        base = f"http://127.0.0.1:{http_port}"
        api = Http(base, "smoke-admin", password)
        poll(
            lambda: api.request("GET", "/health/ready")[0] == 200,
            START_TIMEOUT,
            "readapi /health/ready",
            alive,
        )
        metrics = Http(f"http://127.0.0.1:{metrics_port}", "", "")

        def ingestd_connected() -> bool:
            status, body = metrics.request("GET", "/metrics")
            return status == 200 and "ingestd_mqtt_connected 1.0" in str(body)

        poll(ingestd_connected, START_TIMEOUT, "ingestd connected to the broker", alive)
        step("readapi and ingestd answer")

        status, body = api.request("POST", "/connector/", {"name": connector})
        if status != 201:
            raise SmokeFailure(f"POST /connector/: {status} {body}")
        # The connector announces its sensor; ingestd records it, inactive.
        sender = subprocess.Popen(
            [python, "-c", CONNECTOR_SCRIPT, MQTT_HOST, str(MQTT_PORT), connector, key, value],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            query = f"/datapoint/?is_active=false&connector__name={connector}"

            def announced() -> list:
                status, body = api.request("GET", query)
                return status == 200 and [d for d in body if d["key_in_connector"] == key]

            (datapoint,) = poll(announced, 60, "the announced datapoint over REST", alive)
            status, body = api.request(
                "PUT",
                "/datapoint/",
                {
                    "connector": {"name": connector},
                    "key_in_connector": key,
                    "type": "sensor",
                    "is_active": True,
                },
            )
            if status not in (200, 201) or not body.get("is_active"):
                raise SmokeFailure(f"activating the datapoint: {status} {body}")
            out, err = sender.communicate(timeout=150)
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
        if sender.returncode != 0:
            raise SmokeFailure(f"the MQTT connector failed: {err.strip()[-1500:]}")
        step(f"value published on {out.split()[-1]}")

        ident = str(datapoint["id"])

        answers: list[object] = []

        def read_back() -> bool:
            status, body = api.request("GET", f"/datapoint/last_value/?datapoint__id__in={ident}")
            answers.append((status, body))
            found = status == 200 and body["msgs_by_datapoint_id"].get(ident)
            return bool(found) and found["value"] == value

        try:
            poll(read_back, 60, "the value in /datapoint/last_value/", alive)
        except SmokeFailure as error:
            raise SmokeFailure(f"{error}; last answer {answers[-1]}") from None
        status, history = api.request("GET", f"/datapoint/{ident}/value/")
        if status != 200 or value not in json.dumps(history):
            raise SmokeFailure(f"history of the datapoint: {status} {history}")
        step("value read back over REST (last value and history)")

        admin_login(base, "smoke-admin", password)
        step("superuser logged in to /admin/")
    finally:
        codes = {s.name: s.stop() for s in services}
        try:
            venv_python(
                venv, END_SESSION_SCRIPT, MQTT_HOST, str(MQTT_PORT), env["INGESTD_CLIENT_ID"]
            )
        finally:
            venv_python(venv, DATABASE_SCRIPT, "drop", database, *pg)
    for service in services:
        bad = non_json_lines(service.text())
        if bad:
            raise SmokeFailure(f"{service.name} wrote lines that are not JSON: {bad[:5]}")
    # uvicorn re-raises SIGTERM once it has shut down, so readapi ends by that signal.
    if codes["ingestd"] != 0 or codes["readapi"] not in (0, -signal.SIGTERM):
        raise SmokeFailure(f"exit codes after SIGTERM: {codes}")
    if "Application shutdown complete" not in readapi.text():
        raise SmokeFailure("readapi did not shut down cleanly on SIGTERM")
    step("every log line was JSON; both shut down cleanly on SIGTERM")


def run_launcher_checks(venv: Path, work: Path) -> None:
    """`make run`'s launcher from the installed package, with its embedded broker."""
    directory = work / "launcher"
    directory.mkdir()
    http_port, mqtt_port = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "BEMCOM_DATA_DIR": str(directory / "data"),
        "BEMCOM_HTTP_PORT": str(http_port),
        "MQTT_BROKER_PORT": str(mqtt_port),  # nothing answers there: it starts its own
        "INGESTD_METRICS_PORT": "0",
        "BEMCOM_LOG_JSON": "TRUE",
    }
    launcher = Service(
        "launcher", [str(venv / "bin" / "python"), "-m", "deploy.run"], env, directory
    )
    try:
        banner = poll(
            lambda: "Press Ctrl-C" in launcher.out.read_text() and launcher.out.read_text(),
            START_TIMEOUT,
            "the launcher's banner",
            launcher.alive,
        )
        found = re.search(r"Log in as\s+(\S+) / (\S+)", str(banner))
        if not found:
            raise SmokeFailure(f"no generated account in the banner:\n{banner}")
        where = listening_addresses(http_port)
        if where != {"127.0.0.1"}:
            raise SmokeFailure(f"make run's readapi listens on {where}, not 127.0.0.1 only")
        api = Http(f"http://127.0.0.1:{http_port}", found.group(1), found.group(2))
        status, body = api.request("GET", "/datapoint/")
        keys = {d["key_in_connector"] for d in body} if status == 200 else set()
        if "room_temperature" not in keys:
            raise SmokeFailure(f"GET /datapoint/ as the banner's account: {status} {body}")
        step("make run's launcher started (readapi on 127.0.0.1 only, demo datapoints active)")
    finally:
        code = launcher.stop(signal.SIGINT)  # Ctrl-C
    if code != 0:
        raise SmokeFailure(f"the launcher exited with {code} after Ctrl-C:\n{launcher.text()}")
    step("make run's launcher stopped on Ctrl-C")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="test this venv instead of a fresh one")
    args = parser.parse_args(argv)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bemcom-smoke-"))
    try:
        venv = args.venv.resolve() if args.venv else work / "venv"
        if args.venv is None:
            install(venv, work)
        else:
            step(f"testing the existing venv {venv} ({directory_mib(venv):.0f} MiB)")
        run_service_checks(venv, work)
        run_launcher_checks(venv, work)
    except (SmokeFailure, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        print(f"smoke: FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    step(f"passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
