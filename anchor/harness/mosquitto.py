"""A mosquitto broker of our own on a loopback port, that can stop, crash and come back.

The soak kills it with SIGKILL (what a crash or power loss looks like: nothing saved since the
last autosave) and starts it again on the same port and database, so the engine's reconnect
and its persistent session are exercised against the real broker. The tests and benchmarks
use the same class, and `mosquitto_pub` to publish with the real command-line client.

`Broker` is open to anyone (for the soak and benchmarks); `ShippedBroker` runs the shipped
deploy/mosquitto configuration with users and secrets from `anchor broker secrets`, so the
tests prove the security an operator installs, not a copy of it.
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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchor.harness.certificates import BrokerCertificates
from anchor.harness.ports import free_port
from anchor.ops.broker_access import (
    ACL_FILE,
    PASSWD_FILE,
    PASSWORD_VAR,
    PROBE_PASSWORD_VAR,
    BrokerAccessError,
    read_env_file,
    write_secrets,
)

START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
PUBLISH_TIMEOUT_S = 60.0  # generous: a flood of thousands of messages takes about a second
_SBIN = Path("/usr/sbin/mosquitto")  # Debian installs it outside a normal user's PATH
SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"


class BrokerError(RuntimeError):
    """mosquitto is missing or would not start; the message says what to install or read."""


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return str(_SBIN) if os.access(_SBIN, os.X_OK) else None


@dataclass(frozen=True, slots=True)
class Login:
    """A user name and password on the broker (repr hides the password)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Login({self.username!r})"


class Broker:
    """One mosquitto process with persistence in `workdir`.

    ``stop()`` is a graceful SIGTERM (mosquitto saves its database, so persistent sessions and
    their queued messages survive ``start()``); ``kill()`` is SIGKILL. Limits are generous, so
    a client under test has to bound its own intake.
    """

    host = "127.0.0.1"
    tls_port: int | None = None  # a listener for MQTT over TLS, if the configuration has one

    def __init__(self, workdir: Path, *, extra_config: str = "") -> None:
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
        # Appended after our own lines: a bridge section (deploy/mosquitto/bridge.conf.example)
        # or another listener, as an operator adds a file to conf.d.
        self.config_file.write_text(
            self._config_text() + (f"\n{extra_config}\n" if extra_config else ""),
            encoding="utf-8",
        )
        self._process: subprocess.Popen[bytes] | None = None

    def _config_text(self) -> str:
        # As root, mosquitto would drop to the "mosquitto" user and could no longer write its
        # database here; naming the current user keeps it as is (ignored when not root).
        user = pwd.getpwuid(os.getuid()).pw_name
        return (
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.workdir / 'data'}/\nautosave_interval 5\nuser {user}\n"
            "max_queued_messages 20000\nmax_inflight_messages 1000\n"
            f"log_dest file {self.log_file}\nlog_type error\nlog_type warning\n"
        )

    def client_options(self, login: Login | None = None) -> dict[str, Any]:
        """Keyword arguments for ``aiomqtt.Client`` that reach this broker as ``login``."""
        options: dict[str, Any] = {"hostname": self.host, "port": self.port}
        if login is not None:
            options.update(username=login.username, password=login.password)
        return options

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


class ShippedBroker(Broker):
    """The shipped deploy/mosquitto configuration, installed the way the README says, with the
    users and secrets that `anchor broker secrets` writes for one channel.

    Only what differs from machine to machine is changed, line by line: the listener's port,
    where the password file, the ACL and the certificates are, and what Debian's own
    mosquitto.conf adds around the drop-in (database and log location, the user to run as).
    A line that is not found fails loudly, so a test never runs a config that drifted from the
    shipped one. With ``certificates``, the commented TLS listener is turned on (on
    ``tls_port``) exactly as its comment tells an operator to.

    The broker makes each client's id its user name, so one user holds one connection: a
    second connection as the same user closes the first. Hence several bridges and operators
    by default, one per concurrent client of a test.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        channel: str = "default",
        bridges: Iterable[str] = ("chat", "other"),
        operators: Iterable[str] = ("console", "dashboard", "cli"),
        certificates: BrokerCertificates | None = None,
        shipped: Path = SHIPPED_CONFIG,
        extra_config: str = "",
    ) -> None:
        self.channel = channel
        self.secrets_dir = workdir / "secrets"
        self.certificates = certificates
        self.tls_port = free_port() if certificates is not None else None
        self._shipped = shipped
        try:
            write_secrets(self.secrets_dir, channel, bridges=bridges, operators=operators)
        except BrokerAccessError as exc:
            raise BrokerError(str(exc)) from None
        super().__init__(workdir, extra_config=extra_config)

    @property
    def engine(self) -> Login:
        return self._login("engine.env", f"anchor-{self.channel}", PASSWORD_VAR)

    @property
    def probe(self) -> Login:
        return self._login("probe.env", f"probe-{self.channel}", PROBE_PASSWORD_VAR)

    def bridge(self, name: str = "chat") -> Login:
        return self._login(f"bridge-{name}.env", f"bridge-{name}", PASSWORD_VAR)

    def operator(self, name: str = "console") -> Login:
        return self._login(f"operator-{name}.env", f"operator-{name}", PASSWORD_VAR)

    def _login(self, env_file: str, username: str, variable: str) -> Login:
        return Login(username, read_env_file(self.secrets_dir / env_file)[variable])

    def _config_text(self) -> str:
        user = pwd.getpwuid(os.getuid()).pw_name
        debian = (  # what /etc/mosquitto/mosquitto.conf sets before including conf.d
            f"persistence_location {self.workdir / 'data'}/\nautosave_interval 5\nuser {user}\n"
            f"log_dest file {self.log_file}\nlog_type error\nlog_type warning\n"
            "log_type notice\n"
        )
        swaps = {
            "password_file /etc/mosquitto/anchor/passwd": (
                f"password_file {self.secrets_dir / PASSWD_FILE}"
            ),
            "acl_file /etc/mosquitto/anchor/acl": f"acl_file {self.secrets_dir / ACL_FILE}",
            "listener 1883 127.0.0.1": f"listener {self.port} {self.host}",
        }
        certificates = self.certificates
        if certificates is not None:
            swaps |= {
                "#listener 8883": f"listener {self.tls_port} {self.host}",
                "#certfile /etc/mosquitto/certs/anchor-broker.crt": (
                    f"certfile {certificates.cert_file}"
                ),
                "#keyfile /etc/mosquitto/certs/anchor-broker.key": (
                    f"keyfile {certificates.key_file}"
                ),
                "#tls_version tlsv1.2": "tls_version tlsv1.2",
                "#use_username_as_clientid true": "use_username_as_clientid true",
            }
        lines = self._shipped.read_text(encoding="utf-8").splitlines()
        for old, new in swaps.items():
            found = [n for n, line in enumerate(lines) if line.strip() == old]
            if len(found) != 1:
                raise BrokerError(
                    f"{self._shipped} has {len(found)} lines {old!r} (expected one); "
                    "update ShippedBroker along with the shipped configuration"
                )
            lines[found[0]] = new
        return debian + "\n".join(lines) + "\n"


async def mosquitto_pub(
    broker: Broker,
    topic: str,
    payload: str | bytes | list[str],
    *,
    qos: int = 1,
    retain: bool = False,
    login: Login | None = None,
    cafile: Path | None = None,
) -> None:
    """Publish with the real ``mosquitto_pub`` client, as a chat bridge or an operator would.

    A list publishes one message per item through a single connection (``-l``), which is how
    a flood of thousands of messages is sent quickly. ``login`` logs in (the password goes on
    the command line: for tests only); ``cafile`` publishes over TLS to ``broker.tls_port``,
    trusting that CA. `BrokerError` if the client is missing, fails, or has not finished
    within PUBLISH_TIMEOUT_S.
    """
    executable = shutil.which("mosquitto_pub")
    if executable is None:
        raise BrokerError("mosquitto_pub is not installed: apt-get install mosquitto-clients")
    port = broker.tls_port if cafile is not None and broker.tls_port else broker.port
    args = [executable, "-h", broker.host, "-p", str(port), "-t", topic, "-q", str(qos)]
    if login is not None:
        args += ["-u", login.username, "-P", login.password]
    if cafile is not None:
        args += ["--cafile", str(cafile)]
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
