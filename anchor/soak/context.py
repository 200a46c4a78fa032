"""What the soak's faults may touch: the channel on air and the real peers around it.

The runner builds one `SoakContext` and hands it to each fault in turn. A peer that may be
missing (OBS, the stand-ins) is optional here; a fault says so in its `unavailable` check and
then takes the peer with `present`, so a fault never runs against a peer that is not there.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from anchor.config import Config
from anchor.daemon import Channel
from anchor.harness.mosquitto import Broker
from anchor.harness.obs_studio import ObsStudio
from anchor.harness.standins import OpenAiStub, TtsStandIn
from anchor.soak.audience import Audience

POLL_S = 0.2

Peer = TypeVar("Peer")


@dataclass(slots=True)
class SoakContext:
    """What a fault may touch: the channel and the peers around it."""

    channel: Channel
    config: Config
    broker: Broker
    audience: Audience
    store_path: Path
    segment_ids: set[str]
    llm: OpenAiStub | None = None
    tts: TtsStandIn | None = None
    obs: ObsStudio | None = None
    obs_problem: str = ""
    recordings_problem: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def stream_s(self) -> float:
        return float(self.channel.gauges().get("stream_s", 0.0))

    def finished(self) -> bool:
        return self.done.is_set()

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.finished():
            if await asyncio.to_thread(condition):
                return True
            await asyncio.sleep(POLL_S)
        return False

    async def wait_for_stream_time(self, at_s: float) -> bool:
        """Until the channel has aired `at_s` of stream time (False if the run ended first)."""
        return await self.wait_until(lambda: self.stream_s() >= at_s, float("inf"))

    async def wait_aired(self, question_id: str, timeout_s: float) -> bool:
        """Until a line of the question's answer has been heard on air."""
        return await self.wait_until(
            lambda: question_id in self.audience.aired_questions, timeout_s
        )

    async def stored_ids(self) -> set[str]:
        return {row[0] for row in await asyncio.to_thread(stored_questions, self.store_path)}


def present(peer: Peer | None, what: str) -> Peer:
    """`peer`, which the fault's `unavailable` check has made sure is there."""
    if peer is None:
        raise RuntimeError(f"{what} is not running")
    return peer


def stored_questions(store_path: Path) -> list[tuple[str, str]]:
    """Every question in the channel's store, with its status (read-only, beside the engine)."""
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=5)
    try:
        rows: list[tuple[str, str]] = db.execute("SELECT id, status FROM questions").fetchall()
        return rows
    finally:
        db.close()
