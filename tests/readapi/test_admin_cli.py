"""The admin command line as users run it: `python -m readapi users|tokens ...` as real
processes on the test's database (PostgreSQL, then SQLite), each change checked over REST
with a fresh app (readapi remembers a verified credential for a minute, see readapi/auth.py),
and the console scripts of an installed package."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.readapi.conftest import ClientFactory, Scene, basic, seed_scene
from tests.support.secured_broker import ROOT


def cli(scene: Scene, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "readapi", *args],
        cwd=ROOT,
        env={**os.environ, **scene.env},
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_users_and_tokens_from_the_command_line(scene: Scene, make_client: ClientFactory):
    def status(auth: dict[str, str]) -> int:
        return make_client(scene, auth=auth).get("/datapoint/").status_code

    ok(cli(scene, "users", "create", "carla", stdin="first-pw\n"))
    assert status(basic("carla", "first-pw")) == 403  # no permission yet
    ok(cli(scene, "users", "set-password", "carla", stdin="second-pw\n"))
    ok(cli(scene, "users", "grant", "carla", "view_datapoint"))
    assert status(basic("carla", "second-pw")) == 200
    assert status(basic("carla", "first-pw")) == 401
    listing = ok(cli(scene, "users", "list"))
    assert any(
        line.split("\t")[1:] == ["carla", "True", "False", "view_datapoint"]
        for line in listing.splitlines()
    ), listing

    ok(cli(scene, "users", "revoke", "carla", "view_datapoint"))
    assert status(basic("carla", "second-pw")) == 403
    ok(cli(scene, "users", "grant", "carla", "view_datapoint"))

    token = ok(cli(scene, "tokens", "create", "carla", "--label", "grafana")).strip()
    other = ok(cli(scene, "tokens", "create", "carla")).strip()
    assert status({"Authorization": f"Bearer {token}"}) == 200
    listing = ok(cli(scene, "tokens", "list", "--user", "carla"))
    rows = [line.split("\t") for line in listing.splitlines()[1:]]
    assert sorted(row[2] for row in rows) == ["cli", "grafana"], listing
    assert token not in listing and other not in listing  # only ids of hashes are shown
    grafana_id = next(row[0] for row in rows if row[2] == "grafana")
    ok(cli(scene, "tokens", "revoke", grafana_id))
    assert status({"Authorization": f"Bearer {token}"}) == 401
    assert status({"Authorization": f"Bearer {other}"}) == 200

    ok(cli(scene, "users", "deactivate", "carla"))
    assert status(basic("carla", "second-pw")) == 401
    assert status({"Authorization": f"Bearer {other}"}) == 401
    ok(cli(scene, "users", "activate", "carla"))
    assert status(basic("carla", "second-pw")) == 200


@pytest.fixture
def sqlite_scene(sqlite_env: dict[str, str], unique_name: str):
    """The answers below do not depend on the backend (the test above runs on both)."""
    built = seed_scene(sqlite_env, unique_name)
    yield built
    built.engine.dispose()


def test_unknown_targets_are_clear_errors(sqlite_scene: Scene):
    scene = sqlite_scene
    refused(cli(scene, "users", "deactivate", "nobody-here"), "no user named 'nobody-here'")
    refused(cli(scene, "users", "set-password", "nobody-here", stdin="pw\n"), "no user named")
    refused(cli(scene, "users", "grant", "nobody", "fly_to_the_moon"), "fly_to_the_moon")
    refused(cli(scene, "users", "revoke", "nobody", "fly_to_the_moon"), "fly_to_the_moon")
    refused(cli(scene, "users", "create", "nobody", stdin="pw\n"), "exists")
    refused(cli(scene, "users", "create", "dora", stdin="\n"), "empty password")
    refused(cli(scene, "tokens", "create", "nobody-here"), "no user named")
    refused(cli(scene, "tokens", "revoke", "0123456789ab"), "no token with id")
    refused(cli(scene, "tokens", "revoke", "zz"), "at least 8 hex digits")


def test_no_password_option_on_the_command_line(sqlite_scene: Scene):
    scene = sqlite_scene
    result = cli(scene, "users", "create", "erin", "--password", "visible-to-ps")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


def test_console_scripts_are_installed():
    scripts = Path(sys.executable).parent
    for name in ("bemcom-readapi", "bemcom-ingestd", "bemcom-backup"):
        path = shutil.which(name, path=str(scripts))
        assert path is not None, f"{name} not in {scripts}: pip install -e . first"
    result = subprocess.run(
        [str(scripts / "bemcom-readapi"), "users", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "set-password" in result.stdout, result.stderr
    result = subprocess.run(
        [str(scripts / "bemcom-backup"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # ingestd takes no arguments: a bad setting shows its main() ran and stopped at once.
    result = subprocess.run(
        [str(scripts / "bemcom-ingestd")],
        env={**os.environ, "LOGLEVEL": "LOUD"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "LOGLEVEL" in result.stderr, result.stderr


def _answer_prompts(process: subprocess.Popen, master: int, answers: list[str]) -> None:
    """Type each answer once its prompt is on stderr: getpass flushes what is typed ahead."""
    seen = b""
    for number, answer in enumerate(answers, start=1):
        deadline = time.monotonic() + 30
        while seen.count(b"Password") < number:
            assert time.monotonic() < deadline, seen
            ready, _, _ = select.select([process.stderr], [], [], 1)
            if ready:
                chunk = os.read(process.stderr.fileno(), 4096)
                assert chunk, f"exited before prompt {number}: {seen!r}"
                seen += chunk
        os.write(master, answer.encode() + b"\n")


def test_password_prompt_on_a_terminal(sqlite_scene: Scene, make_client: ClientFactory):
    def create(username: str, answers: list[str]) -> subprocess.CompletedProcess:
        master, slave = os.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "readapi", "users", "create", username],
            cwd=ROOT,
            env={**os.environ, **sqlite_scene.env},
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # no controlling terminal: getpass uses the pty on stdin
        )
        os.close(slave)
        try:
            _answer_prompts(process, master, answers)
            out, err = process.communicate(timeout=60)
        finally:
            os.close(master)
        return subprocess.CompletedProcess(
            process.args, process.returncode, out.decode(), err.decode()
        )

    refused(create("fred", ["one", "two"]), "the two passwords differ")
    ok(create("fred", ["typed-pw", "typed-pw"]))
    client = make_client(sqlite_scene, auth=basic("fred", "typed-pw"))
    assert client.get("/datapoint/").status_code == 403  # known, without permission
