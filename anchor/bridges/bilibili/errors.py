"""What can go wrong talking to Bilibili, as one small hierarchy.

    BilibiliError                 anything below
    ├── PacketError               a frame we refuse: malformed, truncated or over a bound
    ├── SettingError              fatal: an operator must fix a setting (names it); no retry
    ├── ApiError                  the open platform or web API answered with a non-zero code
    ├── AuthRejected              the chat server answered our auth packet with a non-zero code
    ├── ConnectionLost            a chat connection ended (closed, silent too long)
    └── GameOver                  the open-platform game ended; a new one must be started

Every error that comes from the peer keeps the peer's own code and message.
"""

from __future__ import annotations


class BilibiliError(Exception):
    """Base of every error of the Bilibili clients."""


class PacketError(BilibiliError):
    """A frame or packet we will not decode (the connection is dropped and reopened)."""


class SettingError(BilibiliError):
    """Bilibili said a setting is wrong; retrying cannot help until an operator fixes it."""

    def __init__(self, setting: str, code: int, message: str) -> None:
        super().__init__(
            f"Bilibili rejected the {setting!r} setting (code {code}: {message}); "
            f"fix {setting!r} and restart the bridge"
        )
        self.setting = setting
        self.code = code
        self.message = message


class ApiError(BilibiliError):
    """A non-zero answer from an HTTP API, with Bilibili's code, message and request id."""

    def __init__(self, code: int, message: str, request_id: str = "") -> None:
        detail = f" (request {request_id})" if request_id else ""
        super().__init__(f"Bilibili API code {code}: {message}{detail}")
        self.code = code
        self.message = message
        self.request_id = request_id


class AuthRejected(BilibiliError):
    """The chat server refused the auth packet (e.g. -101: token or auth body not valid)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"chat server refused authentication (code {code})")
        self.code = code


class ConnectionLost(BilibiliError):
    """A chat connection ended; the reason says how."""


class GameOver(BilibiliError):
    """The open-platform game is over (7003 or INTERACTION_END); start a new one."""
