"""On-air events: what happened in the channel, told once to every part that cares.

A stage that makes something happen (the playout airs a line, reception accepts a question,
an operator's command is applied) publishes one of these to the event feed and goes on; it
does not know who listens. The air log, the broker outbox, the schedule bookmark, telemetry
and the OBS captions each subscribe to the kinds they need. Adding a listener (the console,
a chat bridge's replies) touches neither the publisher nor the daemon's routing.

Events are facts in the past tense, immutable, and carry only masked text: by the time
anything is published here it has passed moderation. How they look on the wire is decided in
one place, `anchor.links.payloads`.
"""

from __future__ import annotations

from dataclasses import dataclass

from anchor.messages import Answer, Line, WaitingQuestion


@dataclass(frozen=True, slots=True)
class LineAired:
    """A sentence (or a pause) started airing: its first sample is at `stream_time`."""

    line: Line
    stream_time: float  # seconds of stream time
    aired_at: float  # wall time (time.time()) when the playout started it
    speech_seconds: float  # how long the voice speaks
    tail_seconds: float  # the silence after the speech (the line's pause, the sentence gap)


@dataclass(frozen=True, slots=True)
class SegmentStarted:
    segment_id: str
    title: str


@dataclass(frozen=True, slots=True)
class QuestionAccepted:
    question_id: str
    waiting: int  # questions waiting, this one included


@dataclass(frozen=True, slots=True)
class QuestionMerged:
    question_id: str
    into: str  # the waiting question it joined


@dataclass(frozen=True, slots=True)
class QuestionRejected:
    """A question (or a question payload that could not be read) was turned away."""

    reason: str  # a short stable code: moderation, rate_limited, busy, not_json, ...
    detail: str
    question_id: str | None = None  # None when the payload could not be read at all
    user: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionExpired:
    """A question waited longer than the configured age and will not be answered on air."""

    question_id: str
    ids: tuple[str, ...]  # it and the questions merged into it


@dataclass(frozen=True, slots=True)
class QuestionReviewed:
    """An operator decided on a drafted answer (review mode), or nobody did in time.

    `verdict` is approved, rejected or expired; an approved answer airs next and is then
    recorded like any other, a rejected or expired one never airs. `reason` is the operator's
    (masked) or "review timed out"; `by` names the operator, empty for a time-out."""

    question_id: str
    ids: tuple[str, ...]  # it and the questions merged into it
    verdict: str
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class AnswerStarted:
    """The host is about to read a question out and answer it."""

    waiting: WaitingQuestion


@dataclass(frozen=True, slots=True)
class AnswerQueued:
    """Every sentence of the answer is queued; `last_line` is the one whose airing completes
    it (None when nothing of the answer could be aired)."""

    waiting: WaitingQuestion
    answer: Answer | None
    last_line: Line | None


@dataclass(frozen=True, slots=True)
class AnswerAired:
    """The last sentence of an answer went on air and the answer is recorded as aired."""

    waiting: WaitingQuestion
    answer: str
    source: str  # kb, llm or fallback
    aired_at: float  # wall time its first sentence aired


@dataclass(frozen=True, slots=True)
class ControlApplied:
    """An operator's command took effect; `text` is the line said, for `say`."""

    cmd: str
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ControlRefused:
    """An operator's command (or a control payload) was refused; nothing changed on air."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class ScheduleLoaded:
    name: str


@dataclass(frozen=True, slots=True)
class ScheduleRefused:
    """A schedule did not validate; the one on air keeps playing."""

    errors: tuple[str, ...]


Event = (
    LineAired
    | SegmentStarted
    | QuestionAccepted
    | QuestionMerged
    | QuestionRejected
    | QuestionExpired
    | QuestionReviewed
    | AnswerStarted
    | AnswerQueued
    | AnswerAired
    | ControlApplied
    | ControlRefused
    | ScheduleLoaded
    | ScheduleRefused
)
