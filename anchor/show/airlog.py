"""The as-run log: what aired, when, written to the store, and answers recorded as they air.

An event-feed subscriber. Each aired sentence becomes an as-run row and a log line. A viewer's
question moves through the store as it goes on air: `answering` when the host starts on it,
then answered (or fallback) when the last sentence of its answer starts airing; only then is
`AnswerAired` published, for the answers topic and telemetry. A question that waited too long
is recorded as expired. A drafted answer an operator rejected (review mode) leaves its
questions `rejected` with the operator's reason; one nobody reviewed in time leaves them
`expired`. Because the feed drains before the engine stops, an answer that aired
just before a stop is recorded as aired and is not answered again after the restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from anchor.events import (
    AnswerAired,
    AnswerQueued,
    AnswerStarted,
    Event,
    LineAired,
    QuestionExpired,
    QuestionReviewed,
)
from anchor.messages import Answer, Line, WaitingQuestion
from anchor.store import Store, StoreError

log = logging.getLogger(__name__)

MAX_OPEN_ANSWERS = 200
EXPIRED_REASON = "waited too long to be answered"


@dataclass(slots=True)
class _OpenAnswer:
    waiting: WaitingQuestion
    first_aired: float | None = None
    answer: Answer | None = None
    last_line: Line | None = None
    done: bool = False


class AirLog:
    KINDS: tuple[type, ...] = (
        LineAired,
        AnswerStarted,
        AnswerQueued,
        QuestionExpired,
        QuestionReviewed,
    )

    def __init__(
        self,
        store: Store,
        *,
        publish: Callable[[Event], None],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._publish = publish
        self._now = wall_clock
        self._open: dict[str, _OpenAnswer] = {}
        self.answers_recorded = 0
        self.unrecorded = 0  # events lost to a failing store

    async def handle(self, event: Event) -> None:
        try:
            await self._handle(event)
        except StoreError:  # the store logs its failure once, and its recovery
            self.unrecorded += 1

    async def _handle(self, event: Event) -> None:
        if isinstance(event, LineAired):
            await self._aired(event)
        elif isinstance(event, AnswerStarted):
            await self._answering(event.waiting)
        elif isinstance(event, AnswerQueued):
            await self._queued(event)
        elif isinstance(event, QuestionExpired):
            for question_id in event.ids:
                await self._store.set_status(question_id, "expired", EXPIRED_REASON)
        elif isinstance(event, QuestionReviewed):
            await self._reviewed(event)

    async def _reviewed(self, event: QuestionReviewed) -> None:
        """An approved draft is recorded when it airs, like any answer; the others now."""
        if event.verdict == "rejected":
            status, reason = "rejected", f"operator: {event.reason or 'rejected'}"
        elif event.verdict == "expired":
            status, reason = "expired", event.reason
        else:
            return
        for question_id in event.ids:
            await self._store.set_status(question_id, status, reason)

    async def _answering(self, waiting: WaitingQuestion) -> None:
        if len(self._open) >= MAX_OPEN_ANSWERS:
            self._open.pop(next(iter(self._open)))
        self._open[waiting.question.id] = _OpenAnswer(waiting)
        for question_id in waiting.ids:
            await self._store.set_status(question_id, "answering")

    async def _queued(self, event: AnswerQueued) -> None:
        """The answer is fully queued; it is recorded when its last sentence airs."""
        entry = self._open.get(event.waiting.question.id)
        if entry is None:
            return
        entry.answer, entry.last_line, entry.done = event.answer, event.last_line, True
        if event.last_line is None:  # nothing of the answer could be aired
            await self._close(entry, aired_at=entry.first_aired)

    async def _aired(self, event: LineAired) -> None:
        line = event.line
        if not line.text:
            return
        log.info("[%s] %s", _stream_clock(event.stream_time), line.text)
        await self._store.record_aired(
            text=line.text,
            priority=line.priority.name.lower(),
            segment=line.segment,
            question_id=line.question_id,
            stream_time=event.stream_time,
            aired_at=event.aired_at,
        )
        entry = self._open.get(line.question_id) if line.question_id else None
        if entry is None:
            return
        if entry.first_aired is None:
            entry.first_aired = event.aired_at
        if entry.done and line is entry.last_line:
            await self._close(entry, aired_at=entry.first_aired)

    async def _close(self, entry: _OpenAnswer, *, aired_at: float | None) -> None:
        waiting, answer = entry.waiting, entry.answer
        self._open.pop(waiting.question.id, None)
        text = answer.answer if answer is not None else ""
        source = answer.source if answer is not None else "fallback"
        when = aired_at if aired_at is not None else self._now()
        for question_id in waiting.ids:  # the store sets answered / fallback from the source
            await self._store.record_answer(question_id, answer=text, source=source, aired_at=when)
        self.answers_recorded += 1
        self._publish(AnswerAired(waiting, text, source, when))


def _stream_clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
