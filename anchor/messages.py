"""The vocabulary that flows between components.

Every stage speaks in these types, so a component can be replaced without its neighbours
noticing. A `Line` is one sentence the host will say (the sentence is the unit of
interruption and of captioning); `SpeechAudio` is what a voice made of it; `SpokenLine` is
a line ready to air, its audio already at the stream's sample rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

import numpy as np


class Priority(IntEnum):
    """Who asked for a line. A higher value airs first (operator > viewer > schedule > idle)."""

    IDLE = 0
    SCHEDULE = 1
    ANSWER = 2
    OPERATOR = 3


@dataclass(frozen=True, slots=True, eq=False)
class Card:
    """A picture shown beside the host while a line airs: the map of the sites an answer
    names. `key` names the picture (equal keys, equal pictures), so the renderer composes it
    once however many lines and frames carry it; `image` is RGBA uint8, opaque."""

    key: str
    image: np.ndarray[Any, np.dtype[np.uint8]]


@dataclass(frozen=True, slots=True)
class Line:
    """One sentence to be spoken, with the silence that should follow it, and the card (if
    any) on screen while it airs."""

    text: str
    priority: Priority = Priority.SCHEDULE
    pause_after: float = 0.0
    segment: str | None = None
    language: str | None = None
    question_id: str | None = None  # set on the lines of a viewer's question and its answer
    card: Card | None = None


@dataclass(frozen=True, slots=True)
class WordTiming:
    """Where a word (or phoneme group) starts in the synthesized audio, in seconds."""

    text: str
    start: float
    end: float


class MouthShape(IntEnum):
    """The lip shapes the avatar can take; phonemes map onto these (visemes)."""

    CLOSED = 0  # lips together: m, b, p, and rests
    OPEN = 1  # jaw dropped: a, and most vowels
    WIDE = 2  # lips spread, teeth showing: i, e, s, z, ch
    ROUND = 3  # lips pursed: u, o, ü, w


@dataclass(frozen=True, slots=True)
class MouthCue:
    """From `start` seconds into the audio the mouth takes `shape`, until the next cue."""

    start: float
    shape: MouthShape


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """What a voice returns: mono float32 PCM in [-1, 1] at its own sample rate.

    `cues` are the lip shapes the voice's own timing gives (phoneme events, word boundaries),
    in seconds from the first sample of `pcm`; empty when the voice reports no timing, and the
    audio envelope alone then drives the mouth.
    """

    pcm: np.ndarray[Any, np.dtype[np.float32]]
    sample_rate: int
    timings: tuple[WordTiming, ...] = ()
    cues: tuple[MouthCue, ...] = ()

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate


@dataclass(slots=True)
class SpokenLine:
    """A line ready to air: mono float32 samples at the stream rate, silence included."""

    line: Line
    samples: np.ndarray[Any, np.dtype[np.float32]]
    speech_samples: int
    timings: tuple[WordTiming, ...] = field(default=())
    cues: tuple[MouthCue, ...] = field(default=())  # seconds from samples[0]


@dataclass(frozen=True, slots=True)
class Question:
    """A viewer's question as it arrived (before moderation: never aired as is)."""

    id: str
    user: str
    text: str
    platform: str | None = None
    sent_at: float | None = None  # the sender's timestamp, if given
    received_at: float = 0.0  # engine wall time (time.time()) when it arrived


@dataclass(frozen=True, slots=True)
class AudienceEvent:
    """A viewer entering, liking, following or sending a gift, as a bridge reported it (before
    masking and screening: the name is never aired as is)."""

    kind: Literal["enter", "like", "follow", "gift"]
    user: str
    count: int = 1
    gift: str = ""
    platform: str | None = None


@dataclass(slots=True)
class WaitingQuestion:
    """A stored, screened question waiting at the desk, with the near-duplicates merged into it.

    Only `masked_text` is ever aired or published; reception hands the desk the question with
    its text and user already masked, so nothing here holds personal data."""

    question: Question
    masked_text: str
    merged: list[Question] = field(default_factory=list)
    uncounted: int = 0  # merged beyond the desk's bound: counted, not kept

    @property
    def askers(self) -> int:
        return 1 + len(self.merged) + self.uncounted

    @property
    def ids(self) -> list[str]:
        return [self.question.id, *(q.id for q in self.merged)]


AnswerSource = Literal["kb", "llm", "fallback", "sites"]


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete answer; `id` is the knowledge-base entry it rests on, if any."""

    question: str
    answer: str
    source: AnswerSource
    id: str | None
    score: float

    def to_json(self) -> dict[str, Any]:
        """The `anchor ask --json` object: exactly id, answer, score and source."""
        return {
            "id": self.id,
            "answer": self.answer,
            "score": round(self.score, 3),
            "source": self.source,
        }
