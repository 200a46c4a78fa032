"""The event feed: one bounded fan-out of on-air events to the parts that subscribe.

Publishing never waits: the playout publishes from its frame loop, so `publish` only puts the
event on each subscriber's own bounded queue. Each subscriber has one task that hands it its
events in the order they were published, so a slow subscriber (the store on a busy disk, the
broker when it is away) delays only itself. When a subscriber's queue is full its newest event
is dropped and counted; the others are not affected.

On stop the daemon drains the feed before it cancels anything: what aired just before the stop
(an answer, a bookmark) is recorded, so a restart does not air it again. A subscriber may
publish while it handles an event (the air log announces an aired answer); draining waits for
those too, within the time allowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from anchor.events import Event

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]
DEFAULT_CAPACITY = 1000


@dataclass(slots=True)
class _Subscription:
    name: str
    handler: Handler
    kinds: tuple[type, ...]
    queue: asyncio.Queue[Event]
    dropped: int = 0
    failures: int = 0
    failing: int = 0  # failures since the last event it handled
    busy: bool = field(default=False)


class EventFeed:
    def __init__(self) -> None:
        self._subscriptions: list[_Subscription] = []
        self._running = False
        self._idle = asyncio.Event()  # set while every subscriber has handled everything
        self._idle.set()

    def subscribe(
        self,
        name: str,
        handler: Handler,
        kinds: tuple[type, ...],
        *,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        """`handler` gets every published event that is an instance of one of `kinds`."""
        if self._running:
            raise RuntimeError("subscribe before the feed runs")
        queue: asyncio.Queue[Event] = asyncio.Queue(capacity)
        self._subscriptions.append(_Subscription(name, handler, kinds, queue))

    def publish(self, event: Event) -> None:
        for sub in self._subscriptions:
            if not isinstance(event, sub.kinds):
                continue
            try:
                sub.queue.put_nowait(event)
                self._idle.clear()
            except asyncio.QueueFull:
                sub.dropped += 1
                if sub.dropped % 100 == 1:
                    log.warning(
                        "%s is behind: %d events dropped so far (%s)",
                        sub.name,
                        sub.dropped,
                        type(event).__name__,
                    )

    @property
    def dropped(self) -> dict[str, int]:
        return {sub.name: sub.dropped for sub in self._subscriptions}

    @property
    def backlog(self) -> int:
        return sum(sub.queue.qsize() + sub.busy for sub in self._subscriptions)

    async def run(self) -> None:
        """Hand events to every subscriber until cancelled."""
        self._running = True
        async with asyncio.TaskGroup() as group:
            for sub in self._subscriptions:
                group.create_task(self._serve(sub), name=f"feed:{sub.name}")

    async def drain(self) -> None:
        """Return once every subscriber has handled everything published, including what the
        subscribers published meanwhile. The caller bounds it (`asyncio.timeout`)."""
        try:
            while self.backlog:
                await self._idle.wait()
        except asyncio.CancelledError:
            log.warning("stopping with %d on-air events not yet handled", self.backlog)
            raise

    async def _serve(self, sub: _Subscription) -> None:
        while True:
            event = await sub.queue.get()
            sub.busy = True
            try:
                await sub.handler(event)
            except Exception as exc:
                # A failing subscriber (the store on a full disk) fails on every event: the
                # first failure is logged in full, then a count now and then, not a flood.
                sub.failures += 1
                sub.failing += 1
                if sub.failing == 1:
                    log.exception("%s could not handle %s", sub.name, type(event).__name__)
                elif sub.failing % 100 == 0:
                    log.warning(
                        "%s: %d events in a row not handled: %s", sub.name, sub.failing, exc
                    )
            else:
                if sub.failing:
                    log.info("%s handles events again after %d failures", sub.name, sub.failing)
                    sub.failing = 0
            finally:
                sub.busy = False
                if not self.backlog:
                    self._idle.set()
