"""Where every viewer question comes in, whatever carried it (MQTT, the console, the CLI).

In order: the payload is parsed (bad ones are refused with a reason), the viewer's rate is
checked, the text is moderated (sensitive words refuse it; personal data is masked), and the
question is written to the store. Only then does this return, so the MQTT message is
acknowledged after the question is safe on disk. Finally the desk queues it, or merges it into
a waiting near-duplicate, and the rundown is nudged so the answer cuts in at the next sentence.
Every refusal is logged, recorded and published as an event, with its reason.

Edited word lists are picked up with the next question: the check (a stat of each list) and a
recompile run on a worker thread, never on the loop that paces the frames.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from anchor.config import QuestionsConfig
from anchor.events import Event, QuestionAccepted, QuestionMerged, QuestionRejected
from anchor.links.payloads import RejectedInput, parse_question
from anchor.messages import Question
from anchor.moderation import Moderator, RateLimiter
from anchor.questions.desk import Admission, QuestionDesk
from anchor.store.database import Store

log = logging.getLogger(__name__)


class Reception:
    def __init__(
        self,
        config: QuestionsConfig,
        *,
        store: Store,
        moderator: Moderator,
        desk: QuestionDesk,
        nudge: Callable[[], None],
        publish: Callable[[Event], None],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._moderator = moderator
        self._desk = desk
        self._nudge = nudge
        self._publish = publish
        self._now = wall_clock
        self._limiter = RateLimiter(config.per_viewer, config.per_viewer_seconds)
        self.counts: dict[str, int] = {}

    async def take_payload(self, payload: bytes) -> str:
        """An MQTT message. Raises only if the store fails, so the message is not acknowledged."""
        try:
            question = parse_question(
                payload,
                max_bytes=self._config.max_payload_bytes,
                max_chars=self._config.max_chars,
                now=self._now(),
            )
        except RejectedInput as exc:
            self._count("rejected")
            log.warning("question payload refused (%s): %s", exc.reason, exc.detail)
            self._publish(QuestionRejected(exc.reason, exc.detail))
            return "rejected"
        return await self.take(question)

    async def take(self, question: Question) -> str:
        """A parsed question: moderate, store, queue. Returns what became of it."""
        if not self._limiter.allow(question.user, question.received_at):
            reason = (
                f"rate limit: more than {self._config.per_viewer} questions in "
                f"{self._config.per_viewer_seconds:.0f} s"
            )
            return await self._refuse(question, question.text, "rate_limited", reason)
        await self._moderator.areload_if_changed()
        screening = self._moderator.screen(question.text)
        if not screening.allowed:
            return await self._refuse(question, screening.text, "moderation", screening.reason)
        stored = await self._store.add_question(
            question, masked_text=screening.text, status="pending"
        )
        if not stored:
            log.info("question %s was already received (redelivery)", question.id)
            return "duplicate"
        return await self.admit(question, screening.text)

    async def resume(self, limit: int) -> None:
        """Questions accepted before a crash or restart are answered now, oldest first."""
        interrupted = await self._store.requeue_interrupted()
        if interrupted:
            log.info("%d questions were being answered when the engine stopped", interrupted)
        pending = await self._store.pending(limit)
        for stored in pending:
            question = Question(
                id=stored.id,
                user=stored.user,
                text=stored.text,
                platform=stored.platform,
                received_at=stored.received_at,
            )
            await self.admit(question, stored.masked_text)
        if pending:
            log.info(
                "%d questions from before the restart are waiting to be answered", len(pending)
            )

    async def admit(self, question: Question, masked_text: str) -> str:
        """Hand a stored question to the desk (also used for questions pending at start-up)."""
        admission, into = self._desk.admit(question, masked_text)
        if admission is Admission.FULL:
            reason = f"busy: {len(self._desk)} questions already waiting"
            await self._store.set_status(question.id, "rejected", reason)
            self._reject_event(question, "busy", reason)
            self._count("rejected")
            return "rejected"
        if admission is Admission.MERGED:
            await self._store.set_status(
                question.id, "merged", f"merged into {into}", merged_into=into
            )
            self._publish(QuestionMerged(question.id, into or ""))
            self._count("merged")
            return "merged"
        log.info("question %s from %s queued: %s", question.id, question.user, masked_text)
        self._publish(QuestionAccepted(question.id, len(self._desk)))
        self._count("accepted")
        self._nudge()
        return "accepted"

    async def _refuse(self, question: Question, masked: str, code: str, reason: str | None) -> str:
        reason = reason or code
        log.warning("question %s from %s refused: %s", question.id, question.user, reason)
        await self._store.add_question(
            question, masked_text=masked, status="rejected", reason=reason
        )
        self._reject_event(question, code, reason)
        self._count("rejected")
        return "rejected"

    def _reject_event(self, question: Question, code: str, reason: str) -> None:
        self._publish(QuestionRejected(code, reason, question.id, question.user))

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
