"""A private Mosquitto process for tests that stop and start the broker, optionally with a
TLS listener and a password file (certificates made by the openssl CLI)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=bemcom test {name}",
    )  # fmt: skip
    return cert, key


def make_signed(directory: Path, ca: tuple[Path, Path], name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by `ca`: (certificate, key)."""
    cert, key, request = (directory / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
    extensions = directory / f"{name}.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions),
    )  # fmt: skip
    return cert, key


class SecuredBroker:
    """What a TLS + password listener needs, generated in `directory`."""

    def __init__(self, directory: Path, users: dict[str, str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file, ca_key = make_ca(directory)
        self.cert_file, self.key_file = make_signed(directory, (self.ca_file, ca_key), "server")
        self.password_file = directory / "passwords"
        self.password_file.write_text("")
        for user, password in users.items():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(self.password_file), user, password],
                check=True,
                capture_output=True,
                timeout=30,
            )

    def listener_config(self, port: int) -> str:
        return (
            f"listener {port} 127.0.0.1\n"
            f"cafile {self.ca_file}\ncertfile {self.cert_file}\nkeyfile {self.key_file}\n"
            f"password_file {self.password_file}\n"
            "allow_anonymous false\n"
        )


class MosquittoProcess:
    """The real Mosquitto binary with persistence in `directory`, on a port of its own;
    with `secured`, a TLS listener that wants a user and password instead of a plain one;
    `extra` lines are appended to the configuration (e.g. "max_inflight_messages 1000\n")."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        secured: SecuredBroker | None = None,
        extra: str = "",
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "mosquitto.conf"
        listener = (
            secured.listener_config(self.port)
            if secured is not None
            else f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        )
        self.config.write_text(
            listener + "persistence true\n"
            f"persistence_location {directory}/\n"
            "max_queued_messages 1000000\n"
            f"log_dest file {directory}/mosquitto.log\n"
            # Started as root, Mosquitto would switch to its own user, which cannot write the
            # persistence file into the test's directory.
             + ("user root\n" if os.geteuid() == 0 else "") + extra
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()  # Mosquitto saves its persistence file on SIGTERM.
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
