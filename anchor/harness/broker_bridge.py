"""A federation in miniature: a central mosquitto and a city machine's, joined by the bridge
that deploy/mosquitto ships.

The city broker is the shipped deploy/mosquitto configuration (`ShippedBroker`) with the
bridge section of deploy/mosquitto/bridge.conf.example appended, as an operator installs it
in conf.d. Only what differs from machine to machine is changed, line by line: the central
broker's address, the bridge user's password and the CA that signed the central broker's
certificate. The central broker takes the bridge over TLS, with a password file holding the
bridge's user and an ACL whose block for that user is the one the example's comment tells an
operator to copy, so a grant missing from that block breaks the link in the tests too.
Everyone else on the central broker (the chat intake, consoles, channels run there) is
anonymous and may use ``anchor/#``: that broker's own security is not what is tested here.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path

from anchor.harness.certificates import BrokerCertificates, make_certificates
from anchor.harness.mosquitto import Broker, BrokerError, Login, ShippedBroker
from anchor.harness.ports import free_port

EXAMPLE_BRIDGE = (
    Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "bridge.conf.example"
)
_ACL_LINE = re.compile(r"^#   ((?:user|topic) .+)$")
_PASSWD_TIMEOUT_S = 30.0


def example_directive(example: str, key: str) -> str:
    """The value of the one line ``key value`` in the example (not in its comments)."""
    values = [line.split(None, 1)[1] for line in example.splitlines() if line.startswith(f"{key} ")]
    if len(values) != 1:
        raise BrokerError(f"the bridge example has {len(values)} {key!r} lines (expected one)")
    return values[0].strip()


def central_acl_block(example: str) -> str:
    """The central ACL block for the bridge's user, as quoted in the example's comment."""
    lines = [m.group(1) for line in example.splitlines() if (m := _ACL_LINE.match(line))]
    if not lines or not lines[0].startswith("user "):
        raise BrokerError("the bridge example quotes no central ACL block ('#   user ...')")
    return "\n".join(lines) + "\n"


def bridge_section(example: str, *, address: str, password: str, ca_file: Path) -> str:
    """The example with this machine's address, password and CA; every swapped line must be
    in it exactly once, so a test never runs a bridge that drifted from the shipped one."""
    swaps = {
        "address ": f"address {address}",
        "remote_password ": f"remote_password {password}",
        "bridge_cafile ": f"bridge_cafile {ca_file}",
    }
    lines = example.splitlines()
    for prefix, new in swaps.items():
        found = [n for n, line in enumerate(lines) if line.startswith(prefix)]
        if len(found) != 1:
            raise BrokerError(f"the bridge example has {len(found)} lines {prefix!r}")
        lines[found[0]] = new
    return "\n".join(lines) + "\n"


class CentralBroker(Broker):
    """The federation's broker: plain MQTT for anonymous local clients on ``port``, MQTT over
    TLS on ``tls_port`` where the city bridge logs in as ``bridge_login``, limited by
    ``bridge_acl``."""

    def __init__(
        self,
        workdir: Path,
        *,
        certificates: BrokerCertificates,
        bridge_login: Login,
        bridge_acl: str,
    ) -> None:
        self.certificates = certificates
        self.tls_port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.passwd_file = workdir / "passwd"
        self.acl_file = workdir / "acl"
        _write_passwd(self.passwd_file, bridge_login)
        self.acl_file.write_text(
            "# anonymous: the chat intake, consoles and channels on the central machine\n"
            f"topic readwrite anchor/#\ntopic read $SYS/#\n\n{bridge_acl}",
            encoding="utf-8",
        )
        super().__init__(workdir)

    def _config_text(self) -> str:
        certificates = self.certificates
        return super()._config_text() + (
            f"password_file {self.passwd_file}\nacl_file {self.acl_file}\n"
            f"listener {self.tls_port} {self.host}\ncertfile {certificates.cert_file}\n"
            f"keyfile {certificates.key_file}\ntls_version tlsv1.2\n"
        )


class BridgedBrokers:
    """A central broker and a city broker bridged to it with the shipped example.

    The city broker carries channel ``city_channel`` (the one the example names) with the
    users of `anchor broker secrets`; the bridge's notifications tell when the link is up.
    """

    def __init__(self, workdir: Path, *, example: Path = EXAMPLE_BRIDGE) -> None:
        text = example.read_text(encoding="utf-8")
        certificates = make_certificates(workdir / "certificates")
        self.bridge_login = Login(example_directive(text, "remote_username"), secrets.token_hex(16))
        self.bridge_clientid = example_directive(text, "remote_clientid")
        self.city_channel = _bridged_channel(text)
        self.central = CentralBroker(
            workdir / "central",
            certificates=certificates,
            bridge_login=self.bridge_login,
            bridge_acl=central_acl_block(text),
        )
        section = bridge_section(
            text,
            address=f"{self.central.host}:{self.central.tls_port}",
            password=self.bridge_login.password,
            ca_file=certificates.ca_file,
        )
        self.city = ShippedBroker(workdir / "city", channel=self.city_channel, extra_config=section)

    @property
    def link_state_topic(self) -> str:
        """Where the bridge publishes 1 (up) or 0 (down), retained, on both brokers."""
        return f"$SYS/broker/connection/{self.bridge_clientid}/state"

    def start(self) -> None:
        """Start both (the central broker first, so the bridge connects at once); if either
        fails, neither is left running."""
        try:
            self.central.start()
            self.city.start()
        except BrokerError:
            self.kill()
            raise

    def kill(self) -> None:
        self.city.kill()
        self.central.kill()


def _bridged_channel(example: str) -> str:
    channels = {
        line.split()[1].split("/")[1]
        for line in example.splitlines()
        if line.startswith("topic anchor/")
    }
    if len(channels) != 1:
        raise BrokerError(f"the bridge example routes channels {sorted(channels)} (expected one)")
    return channels.pop()


def _write_passwd(path: Path, login: Login) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise BrokerError("mosquitto_passwd is not installed: apt-get install mosquitto")
    path.write_text(f"{login.username}:{login.password}\n", encoding="utf-8")
    path.chmod(0o600)
    run = subprocess.run(
        [tool, "-U", str(path)],
        capture_output=True,
        text=True,
        timeout=_PASSWD_TIMEOUT_S,
        check=False,
    )
    if run.returncode != 0:
        raise BrokerError(f"mosquitto_passwd -U failed: {(run.stderr or run.stdout).strip()}")
