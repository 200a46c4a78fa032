"""What happened on air, told to the store and the broker after the fact.

The playout reports each line as it starts airing. That call comes from the frame loop, so it
only puts a small record on a bounded queue; one task writes the as-run log to SQLite and
publishes "now speaking" events. When the last sentence of an answer starts airing, the answer
is recorded against its question and published on the answers topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anchor.messages import Line, SpokenLine
from anchor.questions.desk import WaitingQuestion
from anchor.store.database import Store

log = logging.getLogger(__name__)

Publish = Callable[[dict[str, Any]], None]
MAX_BACKLOG = 1000
MAX_OPEN_ANSWERS = 200


@dataclass(slots=True)
class _OpenAnswer:
    waiting: WaitingQuestion
    first_aired: float | None = None
    answer: Any = None
    last_line: Line | None = None
    done: bool = False


class AirLog:
    def __init__(
        self,
        store: Store,
        *,
        publish_event: Publish,
        publish_answer: Publish,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._publish_event = publish_event
        self._publish_answer = publish_answer
        self._now = wall_clock
        self._backlog: asyncio.Queue[tuple[SpokenLine, float, float]] = asyncio.Queue(MAX_BACKLOG)
        self._open: dict[str, _OpenAnswer] = {}
        self.dropped = 0
        self.answers_published = 0

    # Called by the rundown -------------------------------------------------------------

    async def answering(self, waiting: WaitingQuestion) -> None:
        if len(self._open) >= MAX_OPEN_ANSWERS:
            self._open.pop(next(iter(self._open)))
        self._open[waiting.question.id] = _OpenAnswer(waiting)
        for question_id in waiting.ids:
            await self._store.set_status(question_id, "answering")

    async def answered(self, waiting: WaitingQuestion, answer: Any, last_line: Line | None) -> None:
        """The answer is fully queued; it is recorded when its last sentence airs."""
        entry = self._open.get(waiting.question.id)
        if entry is None:
            return
        entry.answer, entry.last_line, entry.done = answer, last_line, True
        if last_line is None:  # nothing of the answer could be aired
            await self._close(entry, aired_at=entry.first_aired or self._now())

    def question_text(self, question_id: str) -> str | None:
        """The masked question being answered (for the lower third), if it is on air now."""
        entry = self._open.get(question_id)
        return None if entry is None else entry.waiting.masked_text

    # Called by the playout (synchronously, from the frame loop) -------------------------

    def on_air(self, spoken: SpokenLine, stream_time: float) -> None:
        if not spoken.line.text:
            return
        try:
            self._backlog.put_nowait((spoken, stream_time, self._now()))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("as-run log is behind; %d records dropped so far", self.dropped)

    async def run(self) -> None:
        while True:
            spoken, stream_time, aired_at = await self._backlog.get()
            try:
                await self._record(spoken.line, stream_time, aired_at)
            except Exception:
                log.exception("could not record an aired line")

    async def _record(self, line: Line, stream_time: float, aired_at: float) -> None:
        await self._store.record_aired(
            text=line.text,
            priority=line.priority.name.lower(),
            segment=line.segment,
            question_id=line.question_id,
            stream_time=stream_time,
            aired_at=aired_at,
        )
        self._publish_event(
            {
                "type": "speaking",
                "text": line.text,
                "source": line.priority.name.lower(),
                "segment": line.segment,
                "question_id": line.question_id,
                "stream_time": stream_time,
                "aired_at": aired_at,
            }
        )
        entry = self._open.get(line.question_id) if line.question_id else None
        if entry is None:
            return
        if entry.first_aired is None:
            entry.first_aired = aired_at
        if entry.done and line is entry.last_line:
            await self._close(entry, aired_at=entry.first_aired)

    async def _close(self, entry: _OpenAnswer, *, aired_at: float) -> None:
        waiting, answer = entry.waiting, entry.answer
        self._open.pop(waiting.question.id, None)
        text = getattr(answer, "answer", "") if answer is not None else ""
        source = getattr(answer, "source", "fallback") if answer is not None else "fallback"
        for question_id in waiting.ids:  # the store sets answered / fallback from the source
            await self._store.record_answer(
                question_id, answer=text, source=source, aired_at=aired_at
            )
        self._publish_answer(
            {
                "question_id": waiting.question.id,
                "question": waiting.masked_text,
                "answer": text,
                "source": source,
                "aired_at": aired_at,
                "merged": [q.id for q in waiting.merged],
            }
        )
        self.answers_published += 1
