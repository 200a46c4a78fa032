"""Where every viewer question comes in, whatever carried it (MQTT, the console, the CLI).

In order: the payload is parsed (bad ones are refused with a reason), a viewer an operator
blocked is refused (reason `blocked`), the viewer's rate is checked, the text is moderated
(sensitive words refuse it unless the context rule lets them through, which is logged;
personal data is masked), and the question is written to the store. Only then does this
return, so the MQTT message is acknowledged after the question is safe on disk. Finally the
desk queues it, or merges it into a waiting near-duplicate, and the rundown is nudged so the
answer cuts in at the next sentence.
Every refusal is logged, recorded and published as an event, with its reason.

Personal data is masked at the door, before the rate limit, the log or the store see the
question: in the text, the viewer's name ("张三13811112222") and the platform field. From
here on every stage (log, events, store, desk, answer, CSV export) holds the masked question
only. The original text is stored beside it only when the channel keeps raw text
(``store.keep_raw_text``) for staff to follow up; the original name is never stored.

Edited word lists are picked up with the next question: the check (a stat of each list) and a
recompile run on a worker thread, never on the loop that paces the frames.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from anchor.config import QuestionsConfig
from anchor.events import Event, QuestionAccepted, QuestionMerged, QuestionRejected
from anchor.links.payloads import RejectedInput, parse_question
from anchor.messages import Question
from anchor.moderation import Moderator, RateLimiter, mask_personal_data
from anchor.questions.desk import Admission, QuestionDesk
from anchor.store import Store, StoreError

log = logging.getLogger(__name__)

RESUME_RETRY_S = 5.0
BLOCKED_REASON = "blocked: the viewer is blocked by an operator"


def local_question(text: str, platform: str) -> Question:
    """A question typed at the machine itself; the platform stands in for the viewer."""
    return Question(
        id=f"{platform}-{uuid.uuid4().hex[:12]}",
        user=platform,
        text=text,
        platform=platform,
        received_at=time.time(),
    )


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
        keep_raw_text: bool = False,
        blocked: Callable[[str, str], bool] | None = None,
    ) -> None:
        """``blocked(user, platform)`` says whether an operator blocked the viewer; it is
        asked with the names as they are stored (masked; platform "" when none was given)."""
        self._config = config
        self._blocked = blocked
        self._keep_raw_text = keep_raw_text
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
            detail, _ = mask_personal_data(exc.detail)
            log.warning("question payload refused (%s): %s", exc.reason, detail)
            self._publish(QuestionRejected(exc.reason, detail))
            return "rejected"
        return await self.take(question)

    async def take(self, question: Question) -> str:
        """A parsed question: mask, moderate, store, queue. Returns what became of it."""
        viewer, original = question.user, question.text
        question = _masked(question)
        if self._is_blocked(question):
            return await self._refuse(question, original, "blocked", BLOCKED_REASON)
        # Viewers are told apart by the name as sent; the limiter keeps it in memory only.
        if not self._limiter.allow(viewer, question.received_at):
            reason = (
                f"rate limit: more than {self._config.per_viewer} questions in "
                f"{self._config.per_viewer_seconds:.0f} s"
            )
            return await self._refuse(question, original, "rate_limited", reason)
        await self._moderator.areload_if_changed()
        screening = self._moderator.screen(question.text)
        question = replace(question, text=screening.text)
        if not screening.allowed:
            return await self._refuse(question, original, "moderation", screening.reason)
        if screening.excused:  # holds listed words: say why it was taken
            excused = ", ".join(map(str, screening.excused))
            log.info("question %s taken by the context rule: %s", question.id, excused)
        try:
            stored = await self._store.add_question(
                self._record(question, original), masked_text=question.text, status="pending"
            )
        except StoreError:  # not taken: the broker sends it again, and it must not count twice
            self._limiter.withdraw(viewer, question.received_at)
            raise
        if not stored:
            log.info("question %s was already received (redelivery)", question.id)
            return "duplicate"
        return await self.admit(question, question.text)

    async def take_local(self, text: str, platform: str) -> str:
        """A question typed at the machine (`--question`, `--console`). Nothing waits at a
        broker for it, so when the store fails it is refused here, with the reason logged."""
        try:
            return await self.take(local_question(text, platform))
        except StoreError as exc:
            log.error("question from the %s not taken, the store failed: %s", platform, exc)
            return "not stored"

    async def try_resume(self, limit: int, *, report: bool = True) -> bool:
        """Questions accepted before a crash or restart go back to the desk, oldest first.
        False when the store cannot be read now (see `resume`)."""
        try:
            interrupted = await self._store.requeue_interrupted()
            pending = await self._store.pending(limit)
        except StoreError as exc:
            if report:
                log.error("questions from before the restart wait until the store works: %s", exc)
            return False
        if interrupted:
            log.info("%d questions were being answered when the engine stopped", interrupted)
        for stored in pending:
            question = _masked(  # rows written before names were masked are masked now
                Question(
                    id=stored.id,
                    user=stored.user,
                    text=stored.masked_text,
                    platform=stored.platform,
                    received_at=stored.received_at,
                )
            )
            if self._is_blocked(question):  # blocked while it waited for the restart
                await self._store.set_status(question.id, "rejected", BLOCKED_REASON)
                self._reject_event(question, "blocked", BLOCKED_REASON)
                self._count("rejected")
                continue
            await self.admit(question, stored.masked_text)
        if pending:
            log.info(
                "%d questions from before the restart are waiting to be answered", len(pending)
            )
        return True

    async def resume(self, limit: int, *, retry_every_s: float = RESUME_RETRY_S) -> None:
        """`try_resume` until it works: for a start on a failing disk."""
        while True:
            if await self.try_resume(limit, report=False):
                return
            await asyncio.sleep(retry_every_s)

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

    async def _refuse(
        self, question: Question, original: str, code: str, reason: str | None
    ) -> str:
        """Record a refused (masked) question; ``original`` is stored only if raw text is kept."""
        reason = reason or code
        log.warning("question %s from %s refused: %s", question.id, question.user, reason)
        await self._store.add_question(
            self._record(question, original),
            masked_text=question.text,
            status="rejected",
            reason=reason,
        )
        self._reject_event(question, code, reason)
        self._count("rejected")
        return "rejected"

    def _is_blocked(self, question: Question) -> bool:
        return self._blocked is not None and self._blocked(question.user, question.platform or "")

    def _record(self, question: Question, original: str) -> Question:
        """The masked question as the store keeps it: with its original text if so configured."""
        return replace(question, text=original) if self._keep_raw_text else question

    def _reject_event(self, question: Question, code: str, reason: str) -> None:
        self._publish(QuestionRejected(code, reason, question.id, question.user))

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1


def _masked(question: Question) -> Question:
    """The question with personal data masked in everything a viewer wrote."""
    text, _ = mask_personal_data(question.text)
    user, _ = mask_personal_data(question.user)
    platform = None if question.platform is None else mask_personal_data(question.platform)[0]
    return replace(question, text=text, user=user, platform=platform)
