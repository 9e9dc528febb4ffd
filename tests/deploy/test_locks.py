"""The lock files match pyproject.toml, and every installer uses them: `make run` and the image
the runtime lock only, `make test` the dev lock, in which the runtime set is the same, pin for
pin and hash for hash. (`make smoke` proves the runtime lock starts the service.)"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
TEST_TOOLS = {"pytest", "pytest-timeout", "hypothesis", "schemathesis", "playwright", "ruff"}
# The machines the service runs on: servers, and a 64-bit Raspberry Pi OS.
LINUX_PYTHON_311 = [
    {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": "3.11",
        "python_full_version": "3.11.2",
        "os_name": "posix",
        "extra": "",
    }
    for machine in ("x86_64", "aarch64")
]


class Pin:
    def __init__(self, version: str, marker: str | None, hashes: frozenset[str], via: str):
        self.version, self.marker, self.hashes, self.via = version, marker, hashes, via


def read_lock(path: Path) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", path.read_text()):
        head = block.splitlines()[0]
        if head.startswith("#"):
            continue
        match = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", head)
        assert match, f"{path.name}: not a pinned requirement: {head!r}"
        name, version, marker = match.groups()
        hashes = frozenset(re.findall(r"--hash=(sha256:[0-9a-f]{64})", block))
        assert hashes, f"{path.name}: {name} has no hash"
        pins[canonicalize_name(name)] = Pin(version, marker, hashes, block)
    return pins


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_runtime_lock_pins_every_declared_dependency_within_its_bounds():
    lock = read_lock(REPO / "requirements.lock")
    declared = [Requirement(r) for r in project()["dependencies"]]
    for requirement in declared:
        pin = lock.get(canonicalize_name(requirement.name))
        assert pin, f"{requirement.name} is declared but not locked: run `make lock`"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{requirement.name}=={pin.version} is outside {requirement.specifier}: `make lock`"
        )
        for environment in LINUX_PYTHON_311:
            assert pin.marker is None or Marker(pin.marker).evaluate(environment), pin.marker
    # What the project asks for directly is exactly what pyproject.toml declares now.
    locked_direct = {name for name, pin in lock.items() if "bemcom-api (pyproject.toml)" in pin.via}
    assert locked_direct == {canonicalize_name(r.name) for r in declared}
    # SQLAlchemy's asyncio extra: sqladmin imports sqlalchemy.ext.asyncio, which needs it.
    assert "greenlet" in lock and lock["greenlet"].marker is None
    assert not TEST_TOOLS & set(lock), "test tools belong in the dev lock only"


def test_dev_lock_holds_the_runtime_set_unchanged_plus_the_test_tools():
    runtime = read_lock(REPO / "requirements.lock")
    dev = read_lock(REPO / "requirements-dev.lock")
    for name, pin in runtime.items():
        assert name in dev, f"{name} missing from requirements-dev.lock"
        assert (dev[name].version, dev[name].marker) == (pin.version, pin.marker), name
        assert dev[name].hashes == pin.hashes, name
    assert set(dev) >= TEST_TOOLS
    for requirement in map(Requirement, project()["optional-dependencies"]["dev"]):
        pin = dev[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin.version, prereleases=True), requirement


def make_dry_run(target: str) -> str:
    # A venv path that does not exist: make prints every step a fresh machine would run.
    # Under `make test` the parent's MAKELEVEL and MAKEFLAGS would make this one print
    # "Entering/Leaving directory" lines around the steps: start it as a user would.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target, "VENV=/nonexistent/venv"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_run_installs_the_runtime_lock_only_and_make_test_the_dev_lock():
    run = make_dry_run("run")
    assert "install -q --require-hashes -r requirements.lock" in run
    assert "requirements-dev.lock" not in run and "[dev]" not in run
    assert re.search(r"install -q --no-deps -e \.\n", run)
    assert run.rstrip().endswith("-m deploy.run")
    test = make_dry_run("test")
    assert "install -q --require-hashes -r requirements-dev.lock" in test
    assert "-m pytest" in test


def test_the_image_installs_the_runtime_lock_then_the_project_without_dependencies():
    text = (REPO / "deploy" / "Dockerfile").read_text().replace("\\\n", " ")
    installs = [line.strip() for line in text.splitlines() if "pip install" in line]
    assert len(installs) == 2, installs
    assert "--require-hashes -r requirements.lock" in installs[0]
    assert "--no-deps ." in installs[1]
