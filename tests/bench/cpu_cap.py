"""Cap a process's CPU with a cgroup, to stand one ingestd instance in for a host of its own.

Two ingestd instances on one 2-core machine share the cores with Mosquitto and PostgreSQL,
so a second instance cannot add CPU that is not there. Deployed, each instance runs on a host
of its own; a CFS quota per instance gives each its own, fixed share of a core, which is the
part of that picture this machine can reproduce. Needs a writable cgroup v1 `cpu` hierarchy
(root, as here and on CI) or cgroup v2 with the cpu controller; without either the capped
measurement is skipped, never faked.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

_PERIOD_US = 100_000
_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")


def _v2_has_cpu() -> bool:
    controllers = _V2 / "cgroup.subtree_control"
    return controllers.exists() and "cpu" in controllers.read_text().split()


class CpuCap:
    """One cgroup whose members together get `cores` of CPU time."""

    def __init__(self, cores: float) -> None:
        name = f"bemcom-bench-{secrets.token_hex(4)}"
        quota = int(cores * _PERIOD_US)
        if (_V1 / "cpu.cfs_quota_us").exists():
            self.path = _V1 / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        elif _v2_has_cpu():
            self.path = _V2 / name
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{quota} {_PERIOD_US}")
        else:
            raise OSError("no writable cgroup with a cpu controller")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def nr_throttled(self) -> int:
        """Periods in which the cap held a member back: 0 means it never applied, and a
        "capped" figure would be an uncapped one."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "nr_throttled":
                return int(value)
        raise OSError(f"no nr_throttled in {self.path / 'cpu.stat'}")

    def remove(self) -> None:
        # The members have exited by now; an empty cgroup can be removed.
        with contextlib.suppress(OSError):
            self.path.rmdir()


def available() -> bool:
    try:
        probe = CpuCap(0.5)
    except OSError:
        return False
    probe.remove()
    return True


@contextlib.contextmanager
def capped(cores: float) -> Iterator[CpuCap]:
    cap = CpuCap(cores)
    try:
        yield cap
    finally:
        cap.remove()
