"""Who may use the console: passwords, sessions, CSRF tokens and the login rate limit.

Passwords come from the environment (or, when none is set, from a file of random characters
made once, readable by the owner only, beside the store); only an Argon2 hash is kept in
memory, and neither the password nor the hash is ever logged. Sessions live on the server
(the cookie is a random token), expire after a stretch of idleness and after a fixed maximum
age, and are bounded in number. Every request that changes anything must carry the session's
CSRF token. Failed logins are counted per client address and in total, so guessing is slow.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)

OPERATOR = "operator"
SUPERVISOR = "supervisor"
ROLES = (OPERATOR, SUPERVISOR)
MAX_SESSIONS = 256
MAX_PASSWORD_BYTES = 1024
MAX_TRACKED_CLIENTS = 4096


@dataclass(slots=True)
class Session:
    token: str
    user: str
    role: str
    csrf: str
    created: float
    seen: float
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) for the next page

    @property
    def can_change(self) -> bool:
        """Supervisors watch; only operators change what airs."""
        return self.role == OPERATOR


class Accounts:
    """The two console accounts, `operator` and `supervisor`, each an Argon2 hash or absent."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self._hasher = PasswordHasher()
        self._hashes = dict(hashes)
        # A hash to verify against when the name is unknown, so timing does not tell names.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    @classmethod
    def from_passwords(cls, passwords: dict[str, str]) -> Accounts:
        hasher = PasswordHasher()
        return cls({role: hasher.hash(pw) for role, pw in passwords.items() if pw})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._hashes)

    def check(self, user: str, password: str) -> bool:
        """True when `password` is the account's; always costs one hash check."""
        if len(password.encode("utf-8", "replace")) > MAX_PASSWORD_BYTES:
            return False
        stored = self._hashes.get(user)
        try:
            return self._hasher.verify(stored or self._decoy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False


def load_passwords(
    operator_env: str, supervisor_env: str, password_file: Path | None
) -> tuple[dict[str, str], str]:
    """The accounts' passwords and where the operator's came from (for the start-up line).

    The operator's password is the environment variable's; without it, the password file's
    (made with a random password on first use, mode 0600). The supervisor's account exists
    only when its variable is set. The caller hashes them and lets go of the text."""
    passwords: dict[str, str] = {}
    operator = os.environ.get(operator_env, "")
    source = f"${operator_env}"
    if not operator and password_file is not None:
        operator = _password_from_file(password_file)
        source = str(password_file)
    if operator:
        passwords[OPERATOR] = operator
    else:
        source = "none: set $" + operator_env
    supervisor = os.environ.get(supervisor_env, "")
    if supervisor:
        passwords[SUPERVISOR] = supervisor
    return passwords, source


def _password_from_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("console password file %s unreadable: %s", path, exc)
        return ""
    password = secrets.token_urlsafe(12)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(password + "\n")
    except OSError as exc:
        log.warning("console password file %s not written: %s", path, exc)
        return ""
    return password


class Sessions:
    """Server-side sessions, bounded; idle ones and old ones end on their own."""

    def __init__(
        self,
        *,
        idle_s: float,
        max_age_s: float,
        limit: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle = idle_s
        self._max_age = max_age_s
        self._limit = limit
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def start(self, user: str, role: str) -> Session:
        now = self._clock()
        session = Session(
            token=secrets.token_urlsafe(32),
            user=user,
            role=role,
            csrf=secrets.token_urlsafe(32),
            created=now,
            seen=now,
        )
        self._sessions[session.token] = session
        while len(self._sessions) > self._limit:
            self._sessions.popitem(last=False)
        return session

    def find(self, token: str | None) -> Session | None:
        """The live session for a cookie's token (its idle time restarts), or None."""
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._clock()
        if now - session.seen > self._idle or now - session.created > self._max_age:
            del self._sessions[token]
            return None
        session.seen = now
        self._sessions.move_to_end(token)
        return session

    def alive(self, token: str | None) -> bool:
        """Whether the session still stands, without counting this as activity."""
        session = self._sessions.get(token or "")
        if session is None:
            return False
        now = self._clock()
        return now - session.seen <= self._idle and now - session.created <= self._max_age

    def end(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given), expected)


@dataclass(slots=True)
class _Failures:
    times: deque[float] = field(default_factory=deque)


class LoginLimiter:
    """At most `per_client` failed logins per client address in `window_s`, and `overall`
    failures in total (a guesser with many addresses); beyond that, logins wait."""

    def __init__(
        self,
        *,
        per_client: int = 5,
        overall: int = 50,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_client = per_client
        self._overall = overall
        self._window = window_s
        self._clock = clock
        self._clients: OrderedDict[str, _Failures] = OrderedDict()
        self._all: deque[float] = deque(maxlen=overall)

    def wait_s(self, client: str) -> float:
        """Seconds until `client` may try again (0: now)."""
        now = self._clock()
        waits = [0.0]
        failures = self._clients.get(client)
        if failures is not None:
            _forget(failures.times, now - self._window)
            if len(failures.times) >= self._per_client:
                waits.append(failures.times[0] + self._window - now)
        _forget(self._all, now - self._window)
        if len(self._all) >= self._overall:
            waits.append(self._all[0] + self._window - now)
        return max(waits)

    def failed(self, client: str) -> None:
        now = self._clock()
        failures = self._clients.pop(client, None) or _Failures()
        failures.times.append(now)
        while len(failures.times) > self._per_client:
            failures.times.popleft()
        self._clients[client] = failures
        while len(self._clients) > MAX_TRACKED_CLIENTS:
            self._clients.popitem(last=False)
        self._all.append(now)

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)


def _forget(times: deque[float], before: float) -> None:
    while times and times[0] < before:
        times.popleft()
