"""The deployment files, checked as far as this machine allows (no Docker engine here):
compose parsed with PyYAML, the Dockerfile linted, mosquitto.conf run by the real Mosquitto,
the systemd units through `systemd-analyze verify`, the package built as the image builds it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from deploy.broker import broker_answers, find_mosquitto
from tests.support.broker import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# Every variable of the original service's README, so its compose files work unchanged.
ORIGINAL_VARIABLES = {
    "MQTT_BROKER_HOST",
    "MQTT_BROKER_PORT",
    "ACTIVATE_CONTROL_EXTENSION",
    "ACTIVATE_HISTORY_EXTENSION",
    "LOGLEVEL",
    "DJANGO_DEBUG",
    "DJANGO_ADMINS",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_PASSWORD",
    "DJANGO_SUPERUSER_EMAIL",
    "DJANGOAPIDB_HOST",
    "DJANGOAPIDB_PORT",
    "DJANGOAPIDB_USER",
    "DJANGOAPIDB_PASSWORD",
    "DJANGOAPIDB_DBNAME",
    "N_MTD_WRITE_THREADS",
    "N_WORKER_PROCESSES",
    "ROOT_PATH",
    "HTTPS_ONLY",
}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_compose_services_and_environment():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {
        "timescaledb",
        "mosquitto",
        "ingestd",
        "readapi",
        "prometheus",
        "grafana",
    }
    # `docker compose up` starts the service; monitoring only with --profile monitoring.
    assert {name for name, s in services.items() if "profiles" not in s} == {
        "timescaledb",
        "mosquitto",
        "ingestd",
        "readapi",
    }
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:")
    mounts = services["mosquitto"]["volumes"]
    assert "./mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in mounts
    build = services["ingestd"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    # One image, two services.
    assert services["ingestd"]["image"] == services["readapi"]["image"]
    assert services["ingestd"]["command"] == ["ingestd"]
    assert services["readapi"]["command"] == ["readapi"]
    assert services["readapi"]["ports"] == ["8080:8080"]
    for name in ("ingestd", "readapi"):
        env = services[name]["environment"]
        assert set(env) >= ORIGINAL_VARIABLES, ORIGINAL_VARIABLES - set(env)
        assert env["MQTT_BROKER_HOST"] == "mosquitto"
        assert env["DJANGOAPIDB_HOST"] == "timescaledb"
        assert services[name]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
        assert services[name]["restart"] == "unless-stopped"
    db = services["timescaledb"]["environment"]
    assert db["POSTGRES_USER"] == services["readapi"]["environment"]["DJANGOAPIDB_USER"]
    assert db["POSTGRES_DB"] == services["readapi"]["environment"]["DJANGOAPIDB_DBNAME"]


def test_dockerfile_is_small_non_root_and_healthchecked():
    instructions = dockerfile_instructions()
    bases = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert bases and all(b.split()[0] == "python:3.11-slim" for b in bases)  # multi-arch base
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    keywords = [k for k, _ in final_stage]
    assert "HEALTHCHECK" in keywords and "ENTRYPOINT" in keywords
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    healthcheck = next(rest for k, rest in final_stage if k == "HEALTHCHECK")
    assert "deploy.healthcheck" in healthcheck
    assert not [rest for k, rest in instructions if k == "ADD"]  # no remote downloads
    for keyword, rest in instructions:
        if keyword == "COPY" and "--from=" not in rest:
            sources = [p for p in rest.split()[:-1] if not p.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".git", ".venv", "data"} <= set(ignored)


PACKAGES = ("schema", "ingestd", "readapi", "backup", "demo", "deploy")


def test_the_package_holds_what_the_image_needs(tmp_path: Path):
    # The image runs `pip install .` on what it COPYs: the wheel must carry the migrations
    # and every package. Built from a copy, so no build/ directory lands in the repository.
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "schema/migrations/env.py",
        "schema/migrations/script.py.mako",
        "schema/migrations/versions/0001_initial_schema.py",
        "ingestd/__main__.py",
        "readapi/__main__.py",
        "deploy/healthcheck.py",
        "backup/__main__.py",
        "demo/__main__.py",
    ):
        assert required in names, required


def test_healthcheck_fails_when_nothing_answers():
    env = {
        **os.environ,
        "BEMCOM_HTTP_PORT": str(free_port()),
        "INGESTD_METRICS_PORT": str(free_port()),
    }
    for role, expected in (("readapi", "readapi"), ("ingestd", "ingestd")):
        done = subprocess.run(
            [sys.executable, "-m", "deploy.healthcheck", role],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1 and expected in done.stderr


def test_mosquitto_conf_is_lossless_and_accepted_by_mosquitto(tmp_path: Path):
    text = (DEPLOY / "mosquitto.conf").read_text()
    settings = dict(
        line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert settings["persistence"] == "true"
    assert int(settings["max_queued_messages"]) >= 1_000_000
    binary = find_mosquitto(os.environ.get("PATH", ""))
    if binary is None:
        pytest.skip("mosquitto is not installed")
    port = free_port()
    local = text.replace("/mosquitto/data/", f"{tmp_path}/").replace(
        "listener 1883", f"listener {port} 127.0.0.1"
    )
    if os.geteuid() == 0:
        local += "user root\n"
    (tmp_path / "m.conf").write_text(local)
    process = subprocess.Popen(
        [binary, "-c", str(tmp_path / "m.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, timeout=10)
        assert broker_answers("127.0.0.1", port)
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert "Error" not in output, output
    assert (tmp_path / "mosquitto.db").exists()


# Issue 11's list, each with the value it must have.
HARDENING = {
    "UMask": "0077",
    "StateDirectoryMode": "0700",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "SystemCallFilter": "@system-service",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
}


def unit_directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def local_units(tmp_path: Path) -> list[Path]:
    """The units pointed at what exists here (this Python, a copy of the env file)."""
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert [u.name for u in units] == ["bemcom-ingestd.service", "bemcom-readapi.service"]
    env_file = tmp_path / "bemcom.env"
    env_file.write_text((DEPLOY / "systemd" / "bemcom.env.example").read_text())
    local = []
    for unit in units:
        text = unit.read_text().replace("/opt/bemcom/venv/bin/python", sys.executable)
        (tmp_path / unit.name).write_text(text.replace("/etc/bemcom/bemcom.env", str(env_file)))
        local.append(tmp_path / unit.name)
    return local


def systemd_analyze() -> str:
    analyze = shutil.which("systemd-analyze")
    # Not a skip: CI must check the units (apt-get install systemd provides it).
    assert analyze is not None, "systemd-analyze is not installed (apt-get install systemd)"
    return analyze


def test_systemd_units_are_hardened():
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        directives = unit_directives(unit.read_text())
        assert directives["EnvironmentFile"] == ["/etc/bemcom/bemcom.env"], unit.name
        assert re.search(r"^Restart=(always|on-failure)$", unit.read_text(), re.M)
        assert directives["User"] == ["bemcom"]
        for key, value in HARDENING.items():
            assert value in directives.get(key, []), (unit.name, key, directives.get(key))
        assert int(directives["LimitNOFILE"][0]) >= 65536
        assert directives["StateDirectory"] == ["bemcom"]


def test_systemd_units_verify(tmp_path: Path):
    units = local_units(tmp_path)
    done = subprocess.run(
        [systemd_analyze(), "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line for line in done.stderr.splitlines() if tmp_path.name in line or "bemcom" in line
    ]
    assert done.returncode == 0 and not problems, done.stderr


def test_systemd_units_exposure_is_low(tmp_path: Path):
    # systemd's own score of the sandbox (0 = fully locked, 10 = exposed); before the
    # hardening the units scored 8.5 ("EXPOSED").
    for unit in local_units(tmp_path):
        done = subprocess.run(
            [systemd_analyze(), "security", "--offline=yes", "--threshold=25", str(unit)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
        assert score is not None, done.stdout[-500:] + done.stderr
        assert float(score.group(1)) <= 2.5, (unit.name, score.group(1))
        assert done.returncode == 0, done.stdout[-2000:]


@pytest.mark.parametrize("unit", ["bemcom-ingestd.service", "bemcom-readapi.service"])
def test_units_refuse_to_start_while_the_env_file_is_readable_by_others(tmp_path: Path, unit):
    # The unit's own ExecStartPre line, run as systemd would run it (after its $$ unescaping).
    (pre,) = unit_directives((DEPLOY / "systemd" / unit).read_text())["ExecStartPre"]
    assert pre.startswith("+")  # as root: the file is root's
    env_file = tmp_path / "bemcom.env"
    env_file.write_text("DJANGO_SECRET_KEY=x\n")
    command = shlex.split(
        pre[1:].replace("$$", "$").replace("/etc/bemcom/bemcom.env", str(env_file))
    )
    for mode, refused in ((0o644, True), (0o604, True), (0o600, False), (0o640, False)):
        env_file.chmod(mode)
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert (done.returncode == 1) is refused, (oct(mode), done.stderr)
        assert ("readable by other users" in done.stderr) is refused


def test_env_file_is_installed_owner_only_and_ships_no_secret():
    readme = (DEPLOY / "README.md").read_text()
    install = [line for line in readme.splitlines() if "install" in line and ".env.example" in line]
    assert install and all("-m 0600" in line for line in install), install
    example = unit_directives((DEPLOY / "systemd" / "bemcom.env.example").read_text())
    for secret in ("DJANGO_SECRET_KEY", "DJANGO_SUPERUSER_PASSWORD", "DJANGOAPIDB_PASSWORD"):
        assert example[secret] == [""], secret
