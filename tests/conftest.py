"""Shared fixtures: a real mosquitto broker per test.

The MQTT tests talk to the real broker, not a fake, because what they prove (persistent
sessions, redelivery of unacknowledged messages, last wills, retained status) is the broker's
behaviour as much as ours. A missing broker fails the test with the package to install
rather than skipping it, so a green run always means the MQTT path was exercised.
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
from collections.abc import Iterator
from pathlib import Path

import pytest

_MOSQUITTO_SBIN = Path("/usr/sbin/mosquitto")
_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0


def _find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return str(_MOSQUITTO_SBIN) if os.access(_MOSQUITTO_SBIN, os.X_OK) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MosquittoBroker:
    """One mosquitto process on a loopback port, restartable with its persistence intact.

    ``stop()`` is a graceful SIGTERM (mosquitto saves its database, so persistent sessions
    and their queued messages survive ``start()``); ``kill()`` is SIGKILL (nothing saved
    since the last autosave), which is what a crash or power loss looks like.
    """

    host = "127.0.0.1"

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.port = _free_port()
        self.workdir = workdir
        self.log_file = workdir / "mosquitto.log"
        self.config_file = workdir / "mosquitto.conf"
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self._config_text(), encoding="utf-8")
        self._process: subprocess.Popen[bytes] | None = None

    def _config_text(self) -> str:
        # When the tests run as root, mosquitto would drop to the "mosquitto" user and could
        # no longer write its database in the test's directory; naming the current user keeps
        # it as is (the option is ignored when not started as root).
        user = pwd.getpwuid(os.getuid()).pw_name
        return "\n".join(
            [
                f"listener {self.port} {self.host}",
                "allow_anonymous true",
                "persistence true",
                f"persistence_location {self.workdir / 'data'}/",
                f"user {user}",
                # Generous limits, so a client under test has to bound its own intake.
                "max_queued_messages 20000",
                "max_inflight_messages 1000",
                f"log_dest file {self.log_file}",
                "log_type all",
                "",
            ]
        )

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
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace")
                pytest.fail(
                    f"mosquitto exited at start ({self._process.returncode}): "
                    f"{stderr.strip()} {self._log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self.kill()
        pytest.fail(
            f"mosquitto did not accept connections on port {self.port} "
            f"within {_START_TIMEOUT} s. {self._log_tail()}"
        )

    def stop(self) -> None:
        """Graceful stop: clients are disconnected and the database is saved."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Abrupt stop, as in a crash: nothing is saved."""
        self._end(signal.SIGKILL)

    def _end(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(how)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def _log_tail(self, lines: int = 15) -> str:
        if not self.log_file.exists():
            return ""
        tail = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return "mosquitto log:\n" + "\n".join(tail)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A running mosquitto for this test only, killed when the test ends."""
    executable = _find_mosquitto()
    if executable is None:
        pytest.fail(
            "mosquitto is not installed; the MQTT tests need the real broker. "
            "Install the Debian/Ubuntu package 'mosquitto' (apt-get install mosquitto "
            "mosquitto-clients), or run ./anchor.sh test as root, which installs it."
        )
    broker = MosquittoBroker(executable, tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


async def mosquitto_pub(
    broker: MosquittoBroker,
    topic: str,
    payload: str | bytes | list[str],
    *,
    qos: int = 1,
    retain: bool = False,
) -> None:
    """Publish with the real ``mosquitto_pub`` client, as a chat bridge or an operator would.

    A list publishes one message per item through a single connection (``-l``), which is how
    a flood of thousands of messages is sent quickly. Fails the test if the client fails.
    """
    executable = shutil.which("mosquitto_pub")
    if executable is None:
        pytest.fail("mosquitto_pub is not installed: install the package 'mosquitto-clients'")
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
    _, stderr = await process.communicate(data)
    if process.returncode != 0:
        pytest.fail(f"mosquitto_pub failed ({process.returncode}): {stderr.decode().strip()}")


# OBS Studio, headless: the harness lives in its own module (tests/obs_harness.py).
from obs_harness import ObsHarnessError, ObsStudio  # noqa: E402


@pytest.fixture(scope="module")
def obs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsStudio]:
    """A headless OBS Studio (under its own Xvfb) shared by one test module.

    Missing packages fail the test rather than skip it, so a green run always means the OBS
    path was exercised. OBS and Xvfb are killed when the module ends, whatever happened.
    """
    try:
        studio = ObsStudio(tmp_path_factory.mktemp("obs"))
        studio.start()
    except ObsHarnessError as exc:
        pytest.fail(str(exc))
    try:
        yield studio
    finally:
        studio.close()
