"""On-air events out to the broker: the events topic for everything, the answers topic for answers.

The outbox is an event-feed subscriber, so nothing that produces an event waits on the network;
the feed's bounded queue in front of it drops the newest news when the broker is slow or away
(answers and rejections are in the store as well, so nothing needed for follow-up depends on
the broker). How each event looks on the wire is `anchor.links.payloads`' business.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from anchor.events import AnswerAired, Event
from anchor.links.payloads import WIRE_EVENTS, answer_payload, event_payload


class Publisher(Protocol):
    async def publish_event(self, payload: dict[str, Any]) -> None: ...
    async def publish_answer(self, payload: dict[str, Any]) -> None: ...


class Outbox:
    KINDS = WIRE_EVENTS

    def __init__(
        self,
        publisher: Publisher,
        *,
        channel: str,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._publisher = publisher
        self._channel = channel
        self._now = wall_clock
        self.published = 0

    async def handle(self, event: Event) -> None:
        if isinstance(event, AnswerAired):
            await self._publisher.publish_answer(answer_payload(event))
            self.published += 1
            return
        payload = event_payload(event, channel=self._channel, now=self._now())
        if payload is not None:
            await self._publisher.publish_event(payload)
            self.published += 1
