"""What goes on air next, sentence by sentence, from every source.

Order of precedence: an operator's line, then viewers' questions (the question read out, then
its answer), then the schedule's talking points and idle lines. The rundown synthesizes one
sentence at a time into the bounded line queue. When something more important arrives, the
scheduled sentences already synthesized are taken back out and returned to the director in
order, so the interrupted segment resumes exactly where it stopped once the answer is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Protocol

from anchor.events import AnswerQueued, AnswerStarted, Event, QuestionExpired
from anchor.media.linequeue import LineQueue
from anchor.messages import Answer, Card, Line, Priority, WaitingQuestion
from anchor.moderation import Moderator
from anchor.questions.desk import QuestionDesk
from anchor.show.director import Director
from anchor.speech.speaker import Speaker
from anchor.speech.text import detect_language

log = logging.getLogger(__name__)

_COUNTS = "零一两三四五六七八九十"
EXPIRED_APOLOGY = (
    "刚才有几位朋友的提问等候时间太长，实在抱歉。工会的工作人员会根据记录跟进，也欢迎您再问一次。"
)


class Screen(Protocol):
    def __call__(self, text: str) -> str | None:
        """The text as it may be aired (personal data masked), or None if it must not be."""


class OnAirScreen:
    """Moderation as the rundown and control need it: the text as it may air, or None."""

    def __init__(self, moderator: Moderator) -> None:
        self._moderator = moderator

    def __call__(self, text: str) -> str | None:
        screening = self._moderator.screen(text)
        return screening.text if screening.allowed else None


class AnswerChunk(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def filler(self) -> bool: ...
    @property
    def card(self) -> Card | None: ...


class AnswerStream(AbstractAsyncContextManager["AnswerStream"], Protocol):
    """Sentences of one answer as they are ready; `answer` is the whole of it at the end."""

    def __aiter__(self) -> AsyncIterator[AnswerChunk]: ...
    @property
    def answer(self) -> Answer: ...


class AnswerSource(Protocol):
    def stream(self, text: str) -> AnswerStream: ...


class Rundown:
    def __init__(
        self,
        director: Director,
        desk: QuestionDesk,
        speaker: Speaker,
        lines: LineQueue,
        *,
        answerer: AnswerSource | None,
        screen: Screen,
        publish: Callable[[Event], None],
        expired_apology: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._director = director
        self._desk = desk
        self._speaker = speaker
        self._lines = lines
        self._answerer = answerer
        self._screen = screen
        self._publish = publish
        self._expired_apology = expired_apology
        self._now = wall_clock
        self._urgent = asyncio.Event()
        # Scheduled lines taken out of the queue, oldest first, until handed back in order.
        self._held: list[Line] = []

    def nudge(self) -> None:
        """Something more important than the schedule is waiting (a question, an operator).

        Queued scheduled lines come out at once, so the playout cannot start one of them in
        the meantime; they go back to the director, in order, when the rundown next acts."""
        self._held.extend(s.line for s in self._lines.take_below(Priority.ANSWER))
        self._urgent.set()

    def drop_scheduled(self) -> None:
        """Throw away synthesized scheduled lines (a new schedule, a skip): not to be said."""
        self._lines.take_below(Priority.ANSWER)
        self._held.clear()

    async def run(self) -> None:
        while True:
            self._urgent.clear()
            self._hand_back()
            if self._director.has_inserts:
                await self._air(self._director.next_line())
                continue
            waiting, expired = self._desk.take(self._now())
            if expired:
                self._expire(expired)
                if self._expired_apology:
                    await self._air(Line(self._expired_apology, Priority.ANSWER))
            if waiting is not None:
                await self._answer(waiting)
                continue
            await self._air(self._director.next_line())

    async def _answer(self, waiting: WaitingQuestion) -> None:
        question_id = waiting.question.id
        self._publish(AnswerStarted(waiting))
        await self._air(Line(_introduce(waiting), Priority.ANSWER, question_id=question_id))
        last: Line | None = None
        answer: Answer | None = None
        if self._answerer is not None:
            # `async with` closes the model's connection at once if the answer is cut short.
            async with self._answerer.stream(waiting.masked_text) as stream:
                async for chunk in stream:
                    line = Line(
                        chunk.text,
                        Priority.ANSWER,
                        question_id=None if chunk.filler else question_id,
                        card=chunk.card,
                    )
                    aired = await self._air(line)
                    if aired is not None and not chunk.filler:
                        last = aired
            answer = stream.answer
        self._publish(AnswerQueued(waiting, answer, last))

    def _expire(self, expired: list[WaitingQuestion]) -> None:
        for waiting in expired:
            self._publish(QuestionExpired(waiting.question.id, tuple(waiting.ids)))
        log.warning("%d questions waited too long and were not answered on air", len(expired))

    async def _air(self, line: Line) -> Line | None:
        """Screen, synthesize and queue one line; returns the line as queued, or None.

        Every text the host says passes moderation here, scheduled or not: personal data is
        masked and a line with a sensitive word is held back. A scheduled line gives way to
        anything urgent (it goes back to the director and returns None)."""
        if line.text:
            text = self._screen(line.text)
            if text is None:
                log.warning("line held back by moderation: %r", line.text[:40])
                return None
            if text != line.text:
                line = replace(line, text=text)
        spoken = await self._speaker.speak(line)
        while True:
            if line.priority < Priority.ANSWER and self._pressing():
                self._held.extend(s.line for s in self._lines.take_below(Priority.ANSWER))
                self._held.append(line)
                self._hand_back()
                return None
            if self._lines.has_room:
                self._lines.put_nowait(spoken)
                return line
            room = asyncio.ensure_future(self._lines.wait_for_room())
            urgent = asyncio.ensure_future(self._urgent.wait())
            try:
                await asyncio.wait({room, urgent}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (room, urgent):
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter

    def _hand_back(self) -> None:
        if self._held:
            self._director.give_back(self._held)
            self._held = []

    def _pressing(self) -> bool:
        return len(self._desk) > 0 or self._director.has_inserts


def _introduce(waiting: WaitingQuestion) -> str:
    """How the host reads out a question (already masked and screened)."""
    text = waiting.masked_text.strip()
    if detect_language(text) == "en":
        if waiting.askers > 1:
            return f"{waiting.askers} viewers asked: {text}"
        return f"A viewer asks: {text}"
    if waiting.askers > 1:
        count = _COUNTS[waiting.askers] if waiting.askers <= 10 else str(waiting.askers)
        return f"有{count}位朋友问到：{text}"
    return f"有朋友问：{text}"
