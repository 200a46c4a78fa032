"""A mosquitto broker of our own on a loopback port, that can stop, crash and come back.

The soak kills it with SIGKILL (what a crash or power loss looks like: nothing saved since the
last autosave) and starts it again on the same port and database, so the engine's reconnect
and its persistent session are exercised against the real broker. The tests and benchmarks
use the same class, and `mosquitto_pub` to publish with the real command-line client.
"""

from __future__ import annotations

import asyncio
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
PUBLISH_TIMEOUT_S = 60.0  # generous: a flood of thousands of messages takes about a second
_SBIN = Path("/usr/sbin/mosquitto")  # Debian installs it outside a normal user's PATH


class BrokerError(RuntimeError):
    """mosquitto is missing or would not start; the message says what to install or read."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return str(_SBIN) if os.access(_SBIN, os.X_OK) else None


class Broker:
    """One mosquitto process with persistence in `workdir`.

    ``stop()`` is a graceful SIGTERM (mosquitto saves its database, so persistent sessions and
    their queued messages survive ``start()``); ``kill()`` is SIGKILL. Limits are generous, so
    a client under test has to bound its own intake.
    """

    host = "127.0.0.1"

    def __init__(self, workdir: Path) -> None:
        executable = find_mosquitto()
        if executable is None:
            raise BrokerError(
                "mosquitto is not installed: apt-get install mosquitto mosquitto-clients"
            )
        self.executable = executable
        self.port = free_port()
        self.workdir = workdir
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.log_file = workdir / "mosquitto.log"
        self.config_file = workdir / "mosquitto.conf"
        # As root, mosquitto would drop to the "mosquitto" user and could no longer write its
        # database here; naming the current user keeps it as is (ignored when not root).
        user = pwd.getpwuid(os.getuid()).pw_name
        self.config_file.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir / 'data'}/\nautosave_interval 5\nuser {user}\n"
            "max_queued_messages 20000\nmax_inflight_messages 1000\n"
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
                code = self._process.returncode
                raise BrokerError(f"mosquitto exited at start ({code}). {self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self.kill()
        raise BrokerError(
            f"mosquitto did not accept connections on port {self.port} "
            f"within {START_TIMEOUT_S:g} s. {self.log_tail()}"
        )

    def stop(self) -> None:
        """Graceful stop: clients are disconnected and the database is saved."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Abrupt stop, as in a crash: nothing is saved since the last autosave."""
        self._end(signal.SIGKILL)

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_file.exists():
            return ""
        tail = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return "mosquitto log:\n" + "\n".join(tail)

    def _end(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(how)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def mosquitto_pub(
    broker: Broker,
    topic: str,
    payload: str | bytes | list[str],
    *,
    qos: int = 1,
    retain: bool = False,
) -> None:
    """Publish with the real ``mosquitto_pub`` client, as a chat bridge or an operator would.

    A list publishes one message per item through a single connection (``-l``), which is how
    a flood of thousands of messages is sent quickly. `BrokerError` if the client is missing,
    fails, or has not finished within PUBLISH_TIMEOUT_S.
    """
    executable = shutil.which("mosquitto_pub")
    if executable is None:
        raise BrokerError("mosquitto_pub is not installed: apt-get install mosquitto-clients")
    args = [executable, "-h", broker.host, "-p", str(broker.port), "-t", topic, "-q", str(qos)]
    if retain:
        args.append("-r")
    if isinstance(payload, list):
        args.append("-l")
        data = "".join(f"{line}\n" for line in payload).encode("utf-8")
    else:
        args.append("-s")
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
    process = await asyncio.create_subprocess_exec(
        *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        async with asyncio.timeout(PUBLISH_TIMEOUT_S):
            _, stderr = await process.communicate(data)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BrokerError(f"mosquitto_pub did not finish within {PUBLISH_TIMEOUT_S:g} s") from None
    if process.returncode != 0:
        raise BrokerError(f"mosquitto_pub failed ({process.returncode}): {stderr.decode().strip()}")
