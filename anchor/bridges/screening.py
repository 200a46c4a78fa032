"""Which comments are worth sending to the channel as questions, and how many per viewer.

A live room's chat is mostly not questions: greetings, "666", laughter, emoji, a viewer
typing the same line five times. Sending all of it would fill the engine's queue and its
moderation with noise, so the bridge drops it first and counts why (by reason code, never
with the viewer's text or name). The engine still screens whatever arrives; this is only the
cheap first cut, and a comment in doubt passes.

Reason codes: ``empty``, ``too_long``, ``symbols`` (emoji, symbols, punctuation only),
``digits``, ``repeated`` (one or two characters over and over: 哈哈哈哈, hahaha), ``greeting``,
``too_short`` (fewer than ``min_chars`` letters or digits), ``ignored`` (an ``ignore``
pattern matched), ``rate_limited`` (the viewer's bucket is empty).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from anchor.bridges.chat import ChatEvent
from anchor.bridges.config import BridgeQuestionsConfig
from anchor.links.payloads import clean_text

Reason = Literal[
    "empty", "too_long", "symbols", "digits", "repeated", "greeting", "too_short", "ignored",
    "rate_limited",
]  # fmt: skip
MAX_VIEWERS = 10_000
_REPEATED = re.compile(r"^(.{1,2})\1+$", re.DOTALL)


def meaningful(text: str) -> str:
    """The letters and digits of ``text``, case-folded: what is left when emoji, symbols,
    punctuation and spaces are taken away."""
    return "".join(char for char in text.casefold() if unicodedata.category(char)[0] in ("L", "N"))


def content_reason(
    text: str,
    config: BridgeQuestionsConfig,
    greetings: frozenset[str],
    ignore: tuple[re.Pattern[str], ...],
) -> Reason | None:
    """Why this comment is not a question, or None when it may be one."""
    cleaned = clean_text(text)
    if not cleaned:
        return "empty"
    if len(cleaned) > config.max_chars:
        return "too_long"  # checked first, so the patterns below only see bounded text
    core = meaningful(cleaned)
    if not core:
        return "symbols"
    if all(unicodedata.category(char) == "Nd" for char in core):
        return "digits"
    if _REPEATED.fullmatch(core):
        return "repeated"
    if core in greetings:
        return "greeting"
    if len(core) < config.min_chars:
        return "too_short"
    if any(pattern.search(cleaned) for pattern in ignore):
        return "ignored"
    return None


class ViewerLimit:
    """A token bucket per viewer: ``per_minute`` questions, refilled evenly over the minute.

    The table holds at most ``max_viewers`` buckets; the viewer heard from longest ago is
    forgotten first (a forgotten viewer starts again with a full bucket, which errs towards
    letting a question through)."""

    def __init__(
        self,
        per_minute: float,
        *,
        max_viewers: int = MAX_VIEWERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = max(per_minute, 1.0)
        self._rate = per_minute / 60.0
        self._max = max_viewers
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, viewer: str) -> bool:
        """Take one token from ``viewer``'s bucket if there is one."""
        now = self._clock()
        tokens, last = self._buckets.pop(viewer, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[viewer] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return allowed


class Screening:
    """The bridge's question filter: content first, then the viewer's limit (so "666" and
    greetings do not use up a viewer's questions)."""

    def __init__(
        self, config: BridgeQuestionsConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._greetings = frozenset(filter(None, (meaningful(g) for g in config.greetings)))
        self._ignore = tuple(re.compile(pattern) for pattern in config.ignore)
        self.limit = ViewerLimit(config.per_viewer_per_minute, clock=clock)

    def reason(self, event: ChatEvent) -> Reason | None:
        """Why ``event`` (a comment) is not sent as a question, or None to send it."""
        found = content_reason(event.text, self._config, self._greetings, self._ignore)
        if found is not None:
            return found
        viewer = f"{event.platform}:{event.user_id or event.user}"
        return None if self.limit.allow(viewer) else "rate_limited"
