"""A mosquitto broker of the soak's own, on a loopback port, that can crash and come back.

The soak kills it with SIGKILL (what a crash or power loss looks like: nothing saved since the
last autosave) and starts it again on the same port and database, so the engine's reconnect
and its persistent session are exercised against the real broker.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0


class BrokerError(RuntimeError):
    """mosquitto is missing or would not start; the message says what to install or read."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    host = "127.0.0.1"

    def __init__(self, workdir: Path) -> None:
        executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.access(executable, os.X_OK):
            raise BrokerError("mosquitto is not installed: apt-get install mosquitto")
        self.executable = executable
        self.port = free_port()
        self.workdir = workdir
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.log_file = workdir / "mosquitto.log"
        self.config_file = workdir / "mosquitto.conf"
        user = pwd.getpwuid(os.getuid()).pw_name  # as root, stay root: it writes workdir
        self.config_file.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir / 'data'}/\nautosave_interval 5\nuser {user}\n"
            f"log_dest file {self.log_file}\nlog_type error\nlog_type warning\n",
            encoding="utf-8",
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (or restart) on the same port and database; return once it accepts."""
        if self.running:
            return
        self._process = subprocess.Popen(
            [self.executable, "-c", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"mosquitto exited at start; see {self.log_file}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self.kill()
        raise BrokerError(f"mosquitto did not accept connections on port {self.port}")

    def kill(self) -> None:
        """Abrupt stop, as in a crash."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
