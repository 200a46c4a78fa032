"""Who may do what on the channel's broker: one MQTT user per role, its password, and the ACL.

Only the engine and operators may change what airs; bridges may only ask. mosquitto cannot
grant by a wildcard on user names, so `write_secrets` writes one ACL block per user, and the
password file for exactly the same users (through ``mosquitto_passwd -U``, so the hash format
is whatever the installed mosquitto reads). Each user's secret goes to its own env file
(mode 0600) for the process that connects as that user; nothing secret is ever printed.

Users of channel ``C`` (names are lowercase letters, digits, - and _):

- ``anchor-C`` the engine: reads questions, audience and control; writes answers, events and
  status;
- ``bridge-NAME`` one per chat bridge: writes questions and audience events (entering, likes,
  follows, gifts), nothing else (it cannot read other bridges' viewers' messages either);
- ``operator-NAME`` one per operator or console: writes control; reads events, status, answers;
- ``probe-C`` for `anchor doctor`: may connect and nothing more, so a control message it is
  allowed to publish shows a broker that lets a non-operator drive the show.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Role = Literal["engine", "bridge", "operator", "probe"]

PASSWD_FILE = "passwd"
ACL_FILE = "acl"
PASSWORD_VAR = "ANCHOR_MQTT_PASSWORD"
USERNAME_VAR = "ANCHOR_MQTT_USERNAME"
PROBE_PASSWORD_VAR = "ANCHOR_MQTT_PROBE_PASSWORD"
PROBE_USERNAME_VAR = "ANCHOR_MQTT_PROBE_USERNAME"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_PASSWD_TIMEOUT_S = 30.0


class BrokerAccessError(RuntimeError):
    """The users cannot be written (bad name, mosquitto_passwd missing or failing, I/O)."""


@dataclass(frozen=True, slots=True)
class BrokerUser:
    role: Role
    username: str
    env_file: str  # file name in the secrets folder
    about: str  # one line for the ACL and the env file

    @property
    def password_var(self) -> str:
        return PROBE_PASSWORD_VAR if self.role == "probe" else PASSWORD_VAR

    @property
    def username_var(self) -> str | None:
        """The engine takes its user name from config.yaml (mqtt.username), the others here."""
        if self.role == "engine":
            return None
        return PROBE_USERNAME_VAR if self.role == "probe" else USERNAME_VAR


def channel_users(
    channel: str, bridges: Iterable[str] = (), operators: Iterable[str] = ()
) -> list[BrokerUser]:
    """The users of one channel: its engine, the named bridges and operators, and the probe."""
    _check_name(channel, "channel")
    about = f'the engine of channel "{channel}"'
    users = [BrokerUser("engine", f"anchor-{channel}", "engine.env", about)]
    named: tuple[tuple[Role, str, Iterable[str]], ...] = (
        ("bridge", "chat bridge", bridges),
        ("operator", "operator", operators),
    )
    for role, what, names in named:
        seen: set[str] = set()
        for name in names:
            _check_name(name, role)
            if name in seen:
                raise BrokerAccessError(f"{role} {name!r} is named twice")
            seen.add(name)
            user = f"{role}-{name}"
            users.append(BrokerUser(role, user, f"{user}.env", f'{what} "{name}"'))
    users.append(BrokerUser("probe", f"probe-{channel}", "probe.env", "anchor doctor's probe"))
    return users


def grants(user: BrokerUser, channel: str) -> list[tuple[str, str]]:
    """(access, topic) pairs for the ACL; everything else is denied."""
    base = f"anchor/{channel}"
    if user.role == "engine":
        return [
            ("read", f"{base}/questions"),
            ("read", f"{base}/audience"),
            ("read", f"{base}/control"),
            ("write", f"{base}/answers"),
            ("write", f"{base}/events"),
            ("write", f"{base}/status"),
        ]
    if user.role == "bridge":
        return [("write", f"{base}/questions"), ("write", f"{base}/audience")]
    if user.role == "operator":
        return [
            ("write", f"{base}/control"),
            ("read", f"{base}/events"),
            ("read", f"{base}/status"),
            ("read", f"{base}/answers"),
        ]
    return []


def acl_text(channel: str, users: Iterable[BrokerUser]) -> str:
    """The mosquitto ACL file: one block per user, nothing for anyone else."""
    users = list(users)
    command = ["anchor broker secrets", f"--channel {channel}"] + [
        f"--{user.role} {user.username.removeprefix(user.role + '-')}"
        for user in users
        if user.role in ("bridge", "operator")
    ]
    lines = [
        f'# mosquitto ACL for the anchor channel "{channel}", written by',
        f"#   {' '.join(command)}",
        "# Regenerate it with that command instead of editing it: the password file has to name",
        "# the same users. mosquitto denies every topic that is not granted below, and no line",
        "# comes before the first `user`, so a client without a user name may do nothing.",
    ]
    for user in users:
        lines += ["", f"# {user.about}", f"user {user.username}"]
        granted = grants(user, channel)
        lines += [f"topic {access} {topic}" for access, topic in granted]
        if not granted:
            lines.append("# (no topics: it may connect, nothing more)")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class SecretsReport:
    """What `write_secrets` did, in words that hold no secret."""

    lines: tuple[str, ...]


def write_secrets(
    directory: Path,
    channel: str,
    *,
    bridges: Iterable[str] = (),
    operators: Iterable[str] = (),
    rotate: bool = False,
) -> SecretsReport:
    """Write ``passwd``, ``acl`` and one env file per user into ``directory``.

    The users named now are the whole list: the password file and the ACL hold exactly them,
    and env files of bridges or operators no longer named are deleted. A user's existing
    secret (in its env file) is kept unless ``rotate``. Nothing changes if hashing fails.
    """
    users = channel_users(channel, bridges, operators)
    tool = _mosquitto_passwd()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    passwords: dict[str, str] = {}
    lines: list[str] = []
    for user in users:
        kept = None if rotate else _existing_secret(directory / user.env_file, user.password_var)
        passwords[user.username] = kept or secrets.token_urlsafe(32)
        state = "kept" if kept else ("rotated" if rotate else "new")
        lines.append(f"{directory / user.env_file}: {user.username} ({user.role}), secret {state}")
    with _hashed_passwd(directory, tool, passwords) as hashed:
        _write_private(directory / ACL_FILE, acl_text(channel, users), mode=0o644)
        for user in users:
            _write_private(directory / user.env_file, _env_text(user, passwords[user.username]))
        os.replace(hashed, directory / PASSWD_FILE)
    lines.insert(0, f"{directory / PASSWD_FILE}: {len(users)} users")
    lines.insert(1, f"{directory / ACL_FILE}: one block per user")
    current = {user.env_file for user in users}
    for stale in sorted([*directory.glob("bridge-*.env"), *directory.glob("operator-*.env")]):
        if stale.name not in current:
            stale.unlink()
            lines.append(f"{stale}: deleted (no longer named, so no longer in the password file)")
    return SecretsReport(tuple(lines))


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file as written here (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise BrokerAccessError(
            f"{name!r} is not a valid {what} name: 1-32 lowercase letters, digits, - or _, "
            "starting with a letter or digit"
        )


def _mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd")
    if found is None:
        raise BrokerAccessError(
            "mosquitto_passwd is not installed (it comes with the broker: apt-get install "
            "mosquitto)"
        )
    return found


def _existing_secret(path: Path, variable: str) -> str | None:
    if not path.is_file():
        return None
    return read_env_file(path).get(variable) or None


def _env_text(user: BrokerUser, password: str) -> str:
    lines = [
        f"# {user.about} on the MQTT broker, written by `anchor broker secrets`. Keep it secret.",
    ]
    if user.role == "engine":
        lines.append(
            f"# The engine's user name goes in config.yaml: mqtt.username: {user.username}"
        )
    if user.username_var is not None:
        lines.append(f"{user.username_var}={user.username}")
    lines.append(f"{user.password_var}={password}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _hashed_passwd(directory: Path, tool: str, passwords: dict[str, str]) -> Iterator[Path]:
    """A hashed password file next to its final place; the plain text never outlives this."""
    work = directory / f".{PASSWD_FILE}.{secrets.token_hex(4)}"
    try:
        _write_private(work, "".join(f"{user}:{pw}\n" for user, pw in passwords.items()))
        try:
            run = subprocess.run(
                [tool, "-U", str(work)],
                capture_output=True,
                text=True,
                timeout=_PASSWD_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerAccessError(f"mosquitto_passwd did not run: {exc}") from None
        if run.returncode != 0 or "$" not in work.read_text(encoding="utf-8"):
            problem = (run.stderr or run.stdout).strip() or f"exit status {run.returncode}"
            raise BrokerAccessError(f"mosquitto_passwd -U failed: {problem}")
        yield work
    finally:
        work.unlink(missing_ok=True)


def _write_private(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write through a new file created with ``mode`` (never briefly readable), then rename."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, mode)  # the umask may have taken bits away
        if temporary != path:
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
