"""Under CI (the variable CI set), a skipped test fails: tests/conftest.py's hooks, run on a
tiny test file in a pytest of its own, with and without CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TINY = """
import pytest

def test_runs():
    pass

def test_skips():
    pytest.skip("no frobnicator here")

@pytest.fixture
def tmpfs():
    pytest.skip("cannot mount a tmpfs")

def test_skips_in_setup(tmpfs):
    pass

@pytest.mark.skipif(True, reason="systemd-analyze is not installed")
def test_skipif():
    pass

@pytest.mark.skip_allowed_in_ci
def test_allowed():
    pytest.skip("optional here and in CI")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfail():
    assert False
"""
MODULE_SKIP = """
import pytest
pytest.skip("module needs chromium", allow_module_level=True)

def test_never():
    pass
"""


def _run(tmp_path: Path, ci: str, *files: str) -> tuple[int, dict[str, str], str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_tiny.py").write_text(TINY)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    report = tmp_path / f"report-{ci}.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            f"--junitxml={report}",
            "--continue-on-collection-errors",
            "-q",
            *[str(tmp_path / f) for f in files],
        ],
        cwd=REPO,  # so that `tests.conftest` imports
        env={**os.environ, "CI": ci},
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name") or case.get("classname")] = kinds[-1] if kinds else "passed"
    return done.returncode, outcomes, done.stdout + done.stderr


def test_skips_are_skips_when_ci_is_false(tmp_path):
    code, outcomes, output = _run(tmp_path, "false", "test_tiny.py", "test_module_skip.py")
    assert code == 0, output
    assert outcomes["test_runs"] == "passed"
    for name in ("test_skips", "test_skips_in_setup", "test_skipif", "test_allowed"):
        assert outcomes[name] == "skipped", (name, output)
    assert outcomes["test_xfail"] == "skipped"  # junit's word for an expected failure
    assert "failure" not in outcomes.values() and "error" not in outcomes.values(), output
    assert "1 passed, 5 skipped, 1 xfailed" in output


def test_skips_fail_under_ci_unless_allowed(tmp_path):
    code, outcomes, output = _run(tmp_path, "true", "test_tiny.py", "test_module_skip.py")
    assert code == 1, output
    assert outcomes["test_runs"] == "passed"
    assert outcomes["test_skips"] == "failure", output
    # A skip in setup (a fixture, a skipif marker) fails there: junit calls it an error.
    assert outcomes["test_skipif"] == "error", output
    assert outcomes["test_skips_in_setup"] == "error", output
    assert outcomes["test_allowed"] == "skipped", output
    assert outcomes["test_xfail"] == "skipped", output  # an expected failure stays one
    assert "skipped under CI (no frobnicator here)" in output
    assert "skipped under CI (systemd-analyze is not installed)" in output
    assert "skipped under CI (cannot mount a tmpfs)" in output
    # A module that skips as a whole fails to collect.
    assert [o for n, o in outcomes.items() if "test_module_skip" in n] == ["error"], outcomes
    assert "skipped under CI (module needs chromium)" in output
