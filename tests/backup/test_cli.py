"""`python -m backup`: its options and its errors, as a user meets them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backup.__main__ import main
from tests.support.broker import free_port

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_the_original_options():
    done = subprocess.run(
        [sys.executable, "-m", "backup", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0
    for option in ("-b", "-r", "-t", "-s", "-e", "-d", "-u", "-p", "-y", "-f"):
        assert f" {option}," in done.stdout or f" {option} " in done.stdout, option


def test_backup_or_restore_is_required(capsys):
    try:
        main(["-t", "http://x", "-s", "2021-08-01", "-d", "."])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "one of the arguments -b/--backup -r/--restore is required" in capsys.readouterr().err


def test_missing_directory(tmp_path: Path, capsys):
    code = main(["-b", "-t", "http://x", "-s", "2021-08-01", "-d", str(tmp_path / "nope")])
    assert code == 1
    assert "is not a directory" in capsys.readouterr().err


def test_end_before_start(tmp_path: Path, capsys):
    code = main(
        ["-b", "-t", "http://x", "-s", "2021-08-02", "-e", "2021-08-01", "-d", str(tmp_path)]
    )
    assert code == 1


def test_target_offline(tmp_path: Path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["-b", "-t", url, "-s", "2021-08-01", "-d", str(tmp_path), "--no-progress"])
    assert code == 2
    assert "does not answer" in capsys.readouterr().err


def test_restore_from_a_directory_without_backup(tmp_path: Path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["-r", "-t", url, "-s", "2021-08-01", "-d", str(tmp_path), "--no-progress"])
    assert code == 3
    assert "not a backup" in capsys.readouterr().err
