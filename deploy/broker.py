"""Which MQTT broker `make run` uses: the configured one, one on localhost, or its own.

The embedded broker is the real Mosquitto binary with the settings of deploy/mosquitto.conf
that matter for lossless ingest (persistence, a deep queue), listening on loopback only since
it allows anonymous clients.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

# Debian puts the binary in /usr/sbin, which is not on a normal user's PATH.
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin")


class BrokerMissing(RuntimeError):
    """No broker is configured, none answers, and Mosquitto is not installed."""

    def __init__(self, port: int) -> None:
        super().__init__(
            f"No MQTT broker answers on localhost:{port} and the mosquitto binary is not "
            "installed, so none can be started.\n"
            "  Either install it:   sudo apt-get install mosquitto   (macOS: brew install "
            "mosquitto)\n"
            "  or use a broker you have:   MQTT_BROKER_HOST=broker.example.org "
            "MQTT_BROKER_PORT=1883 make run"
        )


def broker_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_mosquitto(search_path: str, extra_dirs: tuple[str, ...] = SBIN_DIRS) -> str | None:
    """The mosquitto binary on `search_path` (plus the sbin directories), or None."""
    dirs = [d for d in search_path.split(os.pathsep) if d]
    dirs += [d for d in extra_dirs if d not in dirs]
    return shutil.which("mosquitto", path=os.pathsep.join(dirs))


def embedded_config(directory: Path, port: int) -> str:
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {directory}/",
        "autosave_interval 60",
        # Lossless ingest: a persistent session of ingestd may queue this much while it is
        # down; Mosquitto's default of 1000 would drop messages.
        "max_queued_messages 1000000",
        "max_inflight_messages 1000",
        f"log_dest file {directory}/mosquitto.log",
    ]
    if os.geteuid() == 0:
        # As root Mosquitto would switch to its own user, who cannot write the data directory.
        lines.append("user root")
    return "\n".join(lines) + "\n"


class EmbeddedBroker:
    """A Mosquitto process of our own, with its persistence under `directory`."""

    def __init__(self, binary: str | None, directory: Path, port: int) -> None:
        if binary is None:
            raise BrokerMissing(port)
        self.binary = binary
        self.directory = directory.absolute()
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "mosquitto.conf"
        config.write_text(embedded_config(self.directory, self.port))
        # A session of its own: the terminal's Ctrl-C reaches only the launcher, which then
        # stops the broker last, after the processes that still publish to it.
        self.process = subprocess.Popen(
            [self.binary, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not broker_answers("127.0.0.1", self.port, timeout=0.2):
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace").strip()
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {error}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto does not listen on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()  # Mosquitto writes its persistence file on SIGTERM.
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
