"""Start the service's processes as children, watch them, and stop them in order."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import structlog

log = structlog.get_logger("deploy.run")


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        # Own session: Ctrl-C goes to the launcher only, which stops children in order.
        self.process = subprocess.Popen(argv, env=env, start_new_session=True)
        log.info("started", process=name, pid=self.process.pid)

    def exit_code(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("kill", process=self.name, after_s=timeout)
                self.process.kill()
                self.process.wait()
        log.info("stopped", process=self.name, code=self.process.returncode)
        return self.process.returncode


class Supervisor:
    """The children in start order; stopped in reverse (the demo before the services)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: list[Child] = []

    def start_module(self, name: str, module: str, *args: str) -> Child:
        child = Child(name, [sys.executable, "-m", module, *args], self.env)
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.exit_code() is not None), None)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


def run_module(module: str, args: list[str], env: dict[str, str], stdin: str = "") -> str:
    """Run `python -m module args` to completion; raise with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"python -m {module} {args[0] if args else ''} failed ({done.returncode}): "
            f"{done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def wait_until(check, timeout: float, children: Supervisor, what: str) -> None:
    """Poll `check` until true; fail early when a child has died meanwhile."""
    deadline = time.monotonic() + timeout
    while not check():
        dead = children.first_exited()
        if dead is not None:
            raise RuntimeError(f"{dead.name} exited with {dead.exit_code()} while {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s {what}")
        time.sleep(0.25)
