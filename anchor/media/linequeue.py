"""The bounded hand-over between speech and playout, with room for a line to cut in.

Synthesized lines wait here until the playout takes them at a sentence boundary. The queue is
small (it is the lookahead), and it can be preempted: when a viewer's answer or an operator's
line arrives, the lower-priority lines already synthesized are taken out and handed back to
the director, which says them later. The playout also looks at the head of the queue to cut
short a pause when something more important is waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque

from anchor.messages import Priority, SpokenLine


class LineQueue:
    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._lines: deque[SpokenLine] = deque()
        self._room = asyncio.Event()
        self._ready = asyncio.Event()
        self._update()

    def __len__(self) -> int:
        return len(self._lines)

    def peek(self, count: int) -> list[SpokenLine]:
        """The next `count` lines, in airing order, left in the queue (for the console)."""
        return list(self._lines)[:count]

    def head_priority(self) -> Priority | None:
        return self._lines[0].line.priority if self._lines else None

    @property
    def has_room(self) -> bool:
        return len(self._lines) < self._maxsize

    async def wait_for_room(self) -> None:
        while len(self._lines) >= self._maxsize:
            await self._room.wait()

    def put_nowait(self, spoken: SpokenLine) -> None:
        if len(self._lines) >= self._maxsize:
            raise OverflowError("line queue is full")
        self._lines.append(spoken)
        self._update()

    async def put(self, spoken: SpokenLine) -> None:
        """Wait for room, then queue. A line never waits behind lower-priority ones: those are
        expected to have been taken out with `take_below` first."""
        while len(self._lines) >= self._maxsize:
            await self._room.wait()
        self._lines.append(spoken)
        self._update()

    def get_nowait(self) -> SpokenLine | None:
        if not self._lines:
            return None
        spoken = self._lines.popleft()
        self._update()
        return spoken

    async def get(self) -> SpokenLine:
        while not self._lines:
            await self._ready.wait()
        spoken = self._lines.popleft()
        self._update()
        return spoken

    def take_below(self, priority: Priority) -> list[SpokenLine]:
        """Remove and return (in order) every queued line of lower priority than `priority`."""
        taken = [s for s in self._lines if s.line.priority < priority]
        if taken:
            self._lines = deque(s for s in self._lines if s.line.priority >= priority)
            self._update()
        return taken

    def _update(self) -> None:
        """Events mirror the state, so waiters re-check after any change (sync-safe)."""
        if len(self._lines) < self._maxsize:
            self._room.set()
        else:
            self._room.clear()
        if self._lines:
            self._ready.set()
        else:
            self._ready.clear()
