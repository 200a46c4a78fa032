"""Questions waiting to be answered on air.

The desk is bounded: when it is full a new question is turned away with a reason (and recorded),
never silently lost. Near-duplicates asked while one is waiting are merged into it, so the host
says "有三位朋友问到……" once instead of answering the same thing three times. Questions that
waited longer than the configured age are handed back as expired, for an apology or a record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import Enum

from anchor.messages import Question, WaitingQuestion

MAX_MERGED = 200


class Admission(Enum):
    QUEUED = "queued"
    MERGED = "merged"
    FULL = "full"


class QuestionDesk:
    def __init__(
        self,
        *,
        max_pending: int,
        max_age_s: float,
        merge_window_s: float,
        similarity: Callable[[str, str], float],
        near_duplicate: float,
    ) -> None:
        self._max_pending = max_pending
        self._max_age = max_age_s
        self._merge_window = merge_window_s
        self._similarity = similarity
        self._near_duplicate = near_duplicate
        self._waiting: list[WaitingQuestion] = []
        self.arrived = asyncio.Event()

    def __len__(self) -> int:
        return len(self._waiting)

    def admit(self, question: Question, masked_text: str) -> tuple[Admission, str | None]:
        """Queue a question, merge it into a waiting near-duplicate, or refuse it when full.
        Returns the admission and, for a merge, the id it was merged into."""
        for waiting in self._waiting:
            if question.received_at - waiting.question.received_at > self._merge_window:
                continue
            if self._similarity(masked_text, waiting.masked_text) >= self._near_duplicate:
                if len(waiting.merged) < MAX_MERGED:
                    waiting.merged.append(question)
                else:
                    waiting.uncounted += 1
                return Admission.MERGED, waiting.question.id
        if len(self._waiting) >= self._max_pending:
            return Admission.FULL, None
        self._waiting.append(WaitingQuestion(question, masked_text))
        self.arrived.set()
        return Admission.QUEUED, None

    def take(self, now: float) -> tuple[WaitingQuestion | None, list[WaitingQuestion]]:
        """The oldest question still fresh enough to answer, and those that waited too long."""
        expired = [w for w in self._waiting if now - w.question.received_at > self._max_age]
        if expired:
            self._waiting = [w for w in self._waiting if w not in expired]
        chosen = self._waiting.pop(0) if self._waiting else None
        if not self._waiting:
            self.arrived.clear()
        return chosen, expired

    def put_back(self, waiting: WaitingQuestion) -> None:
        """A question taken but not answered after all (an emergency hold cut in): next again.
        It may take the desk one over its bound for a moment; it was counted in before."""
        self._waiting.insert(0, waiting)
        self.arrived.set()

    def drop_user(self, user: str) -> int:
        """Remove every waiting question from a viewer who has been blocked; how many.

        `user` is the name as the desk holds it, masked (as reception stored it)."""
        return len(self.take_user(user))

    def take_user(self, user: str) -> list[Question]:
        """Remove and return every waiting question from `user` (masked), merged ones included,
        so the caller can record them. A question others asked too stays for them: the first
        of the others leads it from then on."""
        taken: list[Question] = []
        kept: list[WaitingQuestion] = []
        for waiting in self._waiting:
            others = [q for q in waiting.merged if q.user != user]
            taken.extend(q for q in waiting.merged if q.user == user)
            if waiting.question.user != user:
                waiting.merged = others
                kept.append(waiting)
                continue
            taken.append(waiting.question)
            if others:
                lead, *rest = others
                kept.append(WaitingQuestion(lead, lead.text, rest, waiting.uncounted))
        self._waiting = kept
        if not self._waiting:
            self.arrived.clear()
        return taken
