"""Answers a person approves before they air (review mode).

Platforms in China often require a person to see an answer before a live host says it. With
review on, the rundown does not answer a waiting question on air: it drafts the whole answer
off air and files it here, while the schedule keeps playing. An operator approves the draft as
written or edited, or rejects it. Only an approved draft airs, as the next answer, read out
like any other (introduction, then its sentences) and recorded as answered once it has aired.

Time-out policy: a draft nobody decided on within `timeout_s` does NOT air. It expires, its
questions are recorded `expired` ("review timed out") and `QuestionReviewed` reports it with
the verdict "expired". Silence at the review desk never puts anything on air. The rundown
looks at the time on its own loop, with its wall clock; there is no timer thread.

Turning review off stops new drafts (questions are answered on air again); the drafts already
pending stay for an operator to decide and never air by themselves. Drafts live in memory
only: after a restart their questions are still `pending` in the store and are drafted again.

An edited answer passes the same screen as every line on air before it is taken; a refused
edit raises `ReviewError` with the reason "moderation" and the draft stays pending.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from anchor.events import Event, QuestionReviewed
from anchor.messages import Answer, Card, WaitingQuestion
from anchor.moderation import mask_personal_data
from anchor.speech.text import split_sentences

log = logging.getLogger(__name__)

TIMEOUT_S = 300.0
MAX_DRAFTS = 50
MAX_RECENT = 100
MAX_EDIT_CHARS = 1000  # an edited answer: a few paragraphs at most
MAX_REASON_CHARS = 200
MAX_OPERATOR_CHARS = 64
TIMED_OUT = "review timed out"

DraftState = Literal["pending", "approved", "rejected", "expired"]


class ReviewError(Exception):
    """A review decision that cannot be taken. ``reason`` is a short stable code:
    ``unknown`` (no such draft), ``not_pending`` (already decided), ``empty`` (an edited
    answer with nothing to say), ``too_long`` or ``moderation`` (the edit failed the screen)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True, eq=False)
class Draft:
    """An answer drafted off air, waiting for (or past) an operator's decision.

    `id` is the question's id; `chunks` are the sentences that will air after the question is
    read out, each with the card shown while it airs. Text here is screened and masked."""

    id: str
    waiting: WaitingQuestion
    answer: Answer | None
    chunks: list[tuple[str, Card | None]]
    created_at: float
    state: DraftState = "pending"
    reason: str = ""
    by: str = ""
    decided_at: float | None = None
    edited: bool = False
    notes: list[str] = field(default_factory=list)  # what drafting left out, for the operator
    original_text: str = ""  # the answer as drafted, before an operator's edit

    @property
    def text(self) -> str:
        """The answer as it will air, in one piece (for the console)."""
        return "".join(text for text, _ in self.chunks)


class ReviewDesk:
    def __init__(
        self,
        *,
        screen: Callable[[str], str | None],
        publish: Callable[[Event], None],
        enabled: bool = False,
        timeout_s: float = TIMEOUT_S,
        max_drafts: int = MAX_DRAFTS,
        max_recent: int = MAX_RECENT,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_drafts < 1 or max_recent < 1:
            raise ValueError("max_drafts and max_recent must be at least 1")
        self._screen = screen
        self._publish = publish
        self._enabled = enabled
        self._timeout = timeout_s
        self._max_drafts = max_drafts
        self._now = wall_clock
        self._pending: OrderedDict[str, Draft] = OrderedDict()  # oldest first
        self._approved: deque[Draft] = deque()  # approved, not yet on air, in approval order
        self._recent: deque[Draft] = deque(maxlen=max_recent)
        self._on_approval: Callable[[], None] | None = None

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Review on or off from the next question; pending drafts stay either way."""
        if enabled != self._enabled:
            log.info("answer review %s", "on" if enabled else "off")
        self._enabled = enabled

    @property
    def timeout_s(self) -> float:
        return self._timeout

    @property
    def max_drafts(self) -> int:
        return self._max_drafts

    @property
    def has_room(self) -> bool:
        """Room for another pending draft; the rundown takes no question while there is none."""
        return len(self._pending) < self._max_drafts

    @property
    def has_approved(self) -> bool:
        return bool(self._approved)

    def pending(self) -> list[Draft]:
        """Drafts waiting for a decision, oldest first."""
        return list(self._pending.values())

    def recent(self) -> list[Draft]:
        """Drafts decided lately (approved, rejected, expired), newest first."""
        return list(reversed(self._recent))

    def get(self, draft_id: str) -> Draft | None:
        found = self._pending.get(draft_id)
        if found is not None:
            return found
        return next((d for d in reversed(self._recent) if d.id == draft_id), None)

    def wake_on_approval(self, callback: Callable[[], None]) -> None:
        """Who to tell that an approved draft is ready to air (the rundown's `nudge`)."""
        self._on_approval = callback

    def file(
        self,
        waiting: WaitingQuestion,
        answer: Answer | None,
        chunks: list[tuple[str, Card | None]],
        *,
        now: float,
        notes: list[str] | None = None,
    ) -> Draft:
        """A drafted answer, from the rundown: pending until an operator decides."""
        draft = Draft(
            waiting.question.id,
            waiting,
            answer,
            list(chunks),
            now,
            notes=list(notes or []),
            original_text="".join(text for text, _ in chunks),
        )
        if draft.id in self._pending:
            log.warning("question %s was drafted again; the newer draft replaces it", draft.id)
            del self._pending[draft.id]
        self._pending[draft.id] = draft
        log.info("answer to %s drafted for review (%d waiting)", draft.id, len(self._pending))
        return draft

    def approve(self, draft_id: str, *, text: str | None = None, by: str) -> Draft:
        """Air the draft next; `text` is the operator's edited answer, which replaces it."""
        draft = self._take_pending(draft_id)
        if text is not None:
            edited = self._edited(text)  # raises before anything changes
            draft.chunks = [(sentence, None) for sentence in split_sentences(edited)]
            draft.answer = _edited_answer(draft, edited)
            draft.edited = True
        self._decide(draft, "approved", "edited" if draft.edited else "", by)
        self._approved.append(draft)
        if self._on_approval is not None:
            self._on_approval()
        return draft

    def reject(self, draft_id: str, *, by: str, reason: str = "") -> Draft:
        """The draft never airs; its questions are recorded rejected by the operator."""
        draft = self._take_pending(draft_id)
        self._decide(draft, "rejected", _clean(reason, MAX_REASON_CHARS), by)
        return draft

    def expire_overdue(self, now: float) -> list[Draft]:
        """Drafts nobody decided on within the time-out: they expire, unaired."""
        overdue = [d for d in self._pending.values() if now - d.created_at >= self._timeout]
        for draft in overdue:
            del self._pending[draft.id]
            self._decide(draft, "expired", TIMED_OUT, "")
        if overdue:
            log.warning("%d drafted answers were not reviewed in time", len(overdue))
        return overdue

    def next_to_air(self) -> Draft | None:
        """The next approved draft, for the rundown to air."""
        return self._approved.popleft() if self._approved else None

    def requeue(self, draft: Draft) -> None:
        """An approved draft whose airing was cut short (an emergency hold): it airs first."""
        self._approved.appendleft(draft)

    def _take_pending(self, draft_id: str) -> Draft:
        draft = self._pending.get(draft_id)
        if draft is None:
            known = self.get(draft_id)
            if known is None:
                raise ReviewError("unknown", "no draft has this id")
            raise ReviewError("not_pending", f"the draft was already {known.state}")
        return draft

    def _edited(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise ReviewError("empty", "the edited answer is empty")
        if len(text) > MAX_EDIT_CHARS:
            raise ReviewError("too_long", f"the edited answer is over {MAX_EDIT_CHARS} characters")
        screened = self._screen(text)
        if screened is None:
            raise ReviewError("moderation", "the edited answer did not pass moderation")
        if not split_sentences(screened):
            raise ReviewError("empty", "the edited answer has nothing to say")
        return screened

    def _decide(self, draft: Draft, state: DraftState, reason: str, by: str) -> None:
        self._pending.pop(draft.id, None)
        draft.state, draft.reason = state, reason
        draft.by = _clean(by, MAX_OPERATOR_CHARS)
        draft.decided_at = self._now()
        self._recent.append(draft)
        log.info("draft %s %s%s", draft.id, state, f" by {draft.by}" if draft.by else "")
        self._publish(
            QuestionReviewed(draft.id, tuple(draft.waiting.ids), state, draft.reason, draft.by)
        )


def _edited_answer(draft: Draft, text: str) -> Answer:
    """The answer recorded for an edited draft: the operator's words, the draft's source."""
    if draft.answer is not None:
        return replace(draft.answer, answer=text)
    return Answer(draft.waiting.masked_text, text, "fallback", None, 0.0)


def _clean(text: str, limit: int) -> str:
    """What an operator typed, as it is kept and published: one line, masked, bounded."""
    printable = "".join(char if char.isprintable() else " " for char in text)
    one_line = " ".join(printable.split())[:limit]
    return mask_personal_data(one_line)[0]
