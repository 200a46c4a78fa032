"""What goes on air next, sentence by sentence, from every source.

Order of precedence: an operator's line, then viewers' questions (the question read out, then
its answer), then the schedule's talking points and idle lines. The rundown synthesizes one
sentence at a time into the bounded line queue. When something more important arrives, the
scheduled sentences already synthesized are taken back out and returned to the director in
order, so the interrupted segment resumes exactly where it stopped once the answer is done.

With review on (`anchor.questions.review`), a waiting question is not answered on air: its
answer is drafted off air by a task the rundown owns (one at a time, while the schedule keeps
airing) and filed for an operator; an approved draft airs next, like any answer. No question
is taken while the review desk is full.

On an emergency hold (the director's `hold`) everything queued below an operator's line is
taken out: scheduled lines go back to the director for after the release, answers are
dropped and an answer being aired stops, its question (or approved draft) first in line again
after the release. Only the standby loop and operators' lines air; no question is taken.
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
from anchor.questions.review import Draft, ReviewDesk
from anchor.show.director import Director
from anchor.speech.speaker import Speaker
from anchor.speech.text import detect_language

log = logging.getLogger(__name__)

DRAFT_CANCEL_TIMEOUT_S = 5.0

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
        review: ReviewDesk | None = None,
        thanks: Callable[[], Line | None] | None = None,
    ) -> None:
        self._director = director
        self._thanks = thanks  # a due engagement line (welcomes, thanks), lowest priority
        self._desk = desk
        self._speaker = speaker
        self._lines = lines
        self._answerer = answerer
        self._screen = screen
        self._publish = publish
        self._expired_apology = expired_apology
        self._now = wall_clock
        self._review = review
        self._urgent = asyncio.Event()
        # Scheduled lines taken out of the queue, oldest first, until handed back in order.
        self._preempted: list[Line] = []
        self._drafting: asyncio.Task[None] | None = None
        if review is not None:
            review.wake_on_approval(self.nudge)

    @property
    def drafting(self) -> bool:
        """An answer is being drafted for review."""
        return self._drafting is not None

    def nudge(self) -> None:
        """Something more important than the schedule is waiting (a question, an operator).

        Queued scheduled lines come out at once, so the playout cannot start one of them in
        the meantime; they go back to the director, in order, when the rundown next acts.
        On hold only an operator's line cuts in: the standby loop stays queued otherwise."""
        if self._director.held and not self._director.has_inserts:
            return
        self._preempted.extend(s.line for s in self._lines.take_below(Priority.ANSWER))
        self._urgent.set()

    def drop_scheduled(self) -> None:
        """Throw away synthesized scheduled lines (a new schedule, a skip): not to be said."""
        self._lines.take_below(Priority.ANSWER)
        self._preempted.clear()

    def cut_to_standby(self) -> None:
        """The director has just gone on hold: nothing queued below an operator's line airs.

        Scheduled lines go back to the director (the schedule carries on with them after the
        release); answers and idle lines are dropped. An answer being aired notices the hold
        at its next sentence and puts its question back."""
        taken = self._lines.take_below(Priority.OPERATOR)
        self._preempted.extend(s.line for s in taken if s.line.priority is Priority.SCHEDULE)
        self._urgent.set()

    async def run(self) -> None:
        try:
            while True:
                self._urgent.clear()
                self._hand_back()
                if self._director.has_inserts:
                    await self._air(self._director.next_line())
                    continue
                if self._review is not None:
                    self._review.expire_overdue(self._now())
                if not self._director.held and await self._take_turn():
                    continue
                thanks = None if self._director.held or self._thanks is None else self._thanks()
                await self._air(thanks or self._director.next_line())
        finally:
            await self._stop_drafting()

    async def _take_turn(self) -> bool:
        """Air an approved draft or answer the next question; False when the schedule's turn.

        With review on, the question is handed to a drafting task instead, and the schedule
        goes on."""
        if self._review is not None:
            draft = self._review.next_to_air()
            if draft is not None:
                await self._air_draft(draft)
                return True
        if not self._may_take_question():
            return False
        waiting, expired = self._desk.take(self._now())
        if expired:
            self._expire(expired)
            if self._expired_apology:
                await self._air(Line(self._expired_apology, Priority.ANSWER))
        if waiting is None:
            return False
        if self._review is not None and self._review.enabled:
            self._start_drafting(self._review, waiting)
            return False
        await self._answer(waiting)
        return True

    async def _answer(self, waiting: WaitingQuestion) -> None:
        question_id = waiting.question.id
        self._publish(AnswerStarted(waiting))
        await self._air(Line(_introduce(waiting), Priority.ANSWER, question_id=question_id))
        last: Line | None = None
        answer: Answer | None = None
        if self._answerer is not None and not self._director.held:
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
                    if self._director.held:
                        break
                    if aired is not None and not chunk.filler:
                        last = aired
            if not self._director.held:
                answer = stream.answer
        if self._director.held:
            log.warning(
                "answer to %s cut by the hold; it is answered after the release", question_id
            )
            self._desk.put_back(waiting)
            return
        self._publish(AnswerQueued(waiting, answer, last))

    async def _air_draft(self, draft: Draft) -> None:
        """An approved draft airs like an answer: the question read out, then its sentences."""
        waiting = draft.waiting
        question_id = waiting.question.id
        self._publish(AnswerStarted(waiting))
        await self._air(Line(_introduce(waiting), Priority.ANSWER, question_id=question_id))
        last: Line | None = None
        for text, card in draft.chunks:
            if self._director.held:
                break
            line = Line(text, Priority.ANSWER, question_id=question_id, card=card)
            aired = await self._air(line)
            if aired is not None:
                last = aired
        if self._director.held and self._review is not None:
            log.warning("approved answer to %s cut by the hold; it airs after it", question_id)
            self._review.requeue(draft)
            return
        self._publish(AnswerQueued(waiting, draft.answer, last))

    def _may_take_question(self) -> bool:
        review = self._review
        if review is None or not review.enabled:
            return True
        return self._drafting is None and review.has_room

    def _start_drafting(self, review: ReviewDesk, waiting: WaitingQuestion) -> None:
        task = asyncio.create_task(self._draft(review, waiting), name="review-draft")
        task.add_done_callback(self._drafted)
        self._drafting = task

    async def _draft(self, review: ReviewDesk, waiting: WaitingQuestion) -> None:
        """The whole answer, off air: its sentences screened as they would air, fillers left
        out. A failing answerer still files a draft (empty) for the operator to write."""
        chunks: list[tuple[str, Card | None]] = []
        notes: list[str] = []
        answer: Answer | None = None
        if self._answerer is not None:
            try:
                async with self._answerer.stream(waiting.masked_text) as stream:
                    async for chunk in stream:
                        if chunk.filler or not chunk.text:
                            continue
                        text = self._screen(chunk.text)
                        if text is None:
                            notes.append("a sentence was held back by moderation")
                        else:
                            chunks.append((text, chunk.card))
                answer = stream.answer
            except Exception:
                log.exception("drafting the answer to %s failed", waiting.question.id)
                chunks, notes = [], ["drafting failed: the answer is to be written"]
        review.file(waiting, answer, chunks, now=self._now(), notes=notes)

    def _drafted(self, task: asyncio.Task[None]) -> None:
        self._drafting = None
        if not task.cancelled() and task.exception() is not None:
            log.error("drafting task failed: %r", task.exception())
        if self._pressing():  # a question waited while this one was drafted
            self._urgent.set()

    async def _stop_drafting(self) -> None:
        task = self._drafting
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task}, timeout=DRAFT_CANCEL_TIMEOUT_S)

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
                # Its words are not logged: the log is kept, and they failed moderation.
                where = f" (question {line.question_id})" if line.question_id else ""
                log.warning("a line of %d characters held back by moderation%s",
                            len(line.text), where)  # fmt: skip
                return None
            if text != line.text:
                line = replace(line, text=text)
        spoken = await self._speaker.speak(line)
        gives_way = line.priority < Priority.ANSWER
        while True:
            if self._off_air_on_hold(line):
                return None
            if gives_way and self._pressing():
                self._preempted.extend(s.line for s in self._lines.take_below(Priority.ANSWER))
                self._preempted.append(line)
                self._hand_back()
                return None
            if self._lines.has_room:
                self._lines.put_nowait(spoken)
                return line
            # Everything news could change was checked just now (no await since): wait for
            # room or for news that comes after this, never spin on news already seen.
            self._urgent.clear()
            room = asyncio.ensure_future(self._lines.wait_for_room())
            urgent = asyncio.ensure_future(self._urgent.wait())
            try:
                await asyncio.wait({room, urgent}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (room, urgent):
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter

    def _off_air_on_hold(self, line: Line) -> bool:
        """On hold a line other than the standby loop's or an operator's does not air; a
        scheduled one goes back to the director for after the release."""
        director = self._director
        if not director.held or line.priority is Priority.OPERATOR or director.is_standby(line):
            return False
        if line.priority is Priority.SCHEDULE:
            self._preempted.append(line)
        return True

    def _hand_back(self) -> None:
        if self._preempted:
            self._director.give_back(self._preempted)
            self._preempted = []

    def _pressing(self) -> bool:
        """Something waits that the rundown would air before the next scheduled line."""
        if self._director.has_inserts:
            return True
        if self._director.held:
            return False
        if self._review is not None and self._review.has_approved:
            return True
        return len(self._desk) > 0 and self._may_take_question()


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
