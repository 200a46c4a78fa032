"""Messages for the broker, queued so that nothing that produces them waits on the network.

Reception, control and the air log hand events and answers over synchronously; one task
publishes them. The queue is bounded: when the broker is slow or away, the oldest news is the
least useful, so new messages are dropped (and counted) rather than memory growing. Answers
and rejections are in the store as well, so nothing needed for follow-up depends on this.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_QUEUED = 1000


class Publisher(Protocol):
    async def publish_event(self, payload: dict[str, Any]) -> None: ...
    async def publish_answer(self, payload: dict[str, Any]) -> None: ...


class Outbox:
    def __init__(self, publisher: Publisher | None, *, channel: str) -> None:
        self._publisher = publisher
        self._channel = channel
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(MAX_QUEUED)
        self.dropped = 0

    def event(self, payload: dict[str, Any]) -> None:
        self._put("event", {**payload, "channel": self._channel, "ts": time.time()})

    def answer(self, payload: dict[str, Any]) -> None:
        self._put("answer", payload)

    async def run(self) -> None:
        while True:
            kind, payload = await self._queue.get()
            if self._publisher is None:
                continue
            try:
                if kind == "answer":
                    await self._publisher.publish_answer(payload)
                else:
                    await self._publisher.publish_event(payload)
            except Exception:
                log.exception("could not publish an %s", kind)

    def _put(self, kind: str, payload: dict[str, Any]) -> None:
        if self._publisher is None:
            return
        try:
            self._queue.put_nowait((kind, payload))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("broker outbox full; %d messages dropped so far", self.dropped)
