"""What a bridge takes from a platform's chat, in one shape whatever the platform.

Every platform client (the Bilibili open platform, its web protocol, a capture helper's
JSON) maps its messages to `ChatEvent`; the rest of the bridge (which comments are questions,
per-viewer limits, de-duplication, the spool and the broker) knows nothing of platforms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["comment", "gift", "like", "enter", "follow"]
KINDS: tuple[Kind, ...] = ("comment", "gift", "like", "enter", "follow")
MAX_TEXT_CHARS = 500
MAX_NAME_CHARS = 64


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """One thing a viewer did in the chat.

    `msg_id` is the platform's own id for the message (the de-duplication key; a client
    derives a stable one when the platform gives none). `user` is the display name, `user_id`
    the platform's stable id for the viewer when it has one (open_id, uid), else "". `text` is
    the comment (empty for other kinds); `count` how many likes or gifts; `gift` the gift's
    name; `ts` the platform's time in seconds (0 when it gives none)."""

    platform: str
    kind: Kind
    msg_id: str
    user: str
    user_id: str = ""
    text: str = ""
    count: int = 1
    gift: str = ""
    ts: float = 0.0

    @property
    def key(self) -> str:
        """Unique across platforms: what the question's id and the de-duplication use."""
        return f"{self.platform}:{self.msg_id}"


# Where a platform client hands its events; it must not block for long (the bridge queues).
Sink = Callable[[ChatEvent], Awaitable[None]]


def clip(text: str, limit: int) -> str:
    """Text from outside, bounded before it goes anywhere."""
    return text if len(text) <= limit else text[:limit]
