"""What is on air now, for the console: kept from the event feed, bounded, masked already.

Every text here has passed moderation and masking before it was published (lines are screened
before they air, questions are masked at intake), so the console shows what the feed says."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from anchor.events import (
    AnswerAired,
    ControlApplied,
    ControlRefused,
    Event,
    LineAired,
    QuestionAccepted,
    QuestionRejected,
    ScheduleLoaded,
    ScheduleRefused,
    SegmentStarted,
)

MAX_RECENT = 50


@dataclass(slots=True)
class Happening:
    at: float
    kind: str
    text: str


class OnAirBoard:
    KINDS: tuple[type, ...] = (
        LineAired,
        SegmentStarted,
        AnswerAired,
        QuestionAccepted,
        QuestionRejected,
        ControlApplied,
        ControlRefused,
        ScheduleLoaded,
        ScheduleRefused,
    )

    def __init__(self, *, wall_clock: Any = time.time) -> None:
        self._now = wall_clock
        self.line: str = ""
        self.line_priority: str = ""
        self.line_at: float = 0.0
        self.segment_id: str = ""
        self.segment_title: str = ""
        self.recent: deque[Happening] = deque(maxlen=MAX_RECENT)
        self.version = 0  # goes up with every change, so live pages know when to redraw

    async def handle(self, event: Event) -> None:
        now = self._now()
        if isinstance(event, LineAired):
            if event.line.text:
                self.line = event.line.text
                self.line_priority = event.line.priority.name.lower()
                self.line_at = event.aired_at
        elif isinstance(event, SegmentStarted):
            self.segment_id, self.segment_title = event.segment_id, event.title
            self.recent.appendleft(Happening(now, "segment", event.title))
        elif isinstance(event, AnswerAired):
            self.recent.appendleft(Happening(now, "answered", event.waiting.masked_text))
        elif isinstance(event, QuestionAccepted):
            self.recent.appendleft(Happening(now, "question", event.question_id))
        elif isinstance(event, QuestionRejected):
            self.recent.appendleft(Happening(now, "refused", event.reason))
        elif isinstance(event, ControlApplied):
            self.recent.appendleft(Happening(now, "control", event.cmd))
        elif isinstance(event, ControlRefused):
            self.recent.appendleft(Happening(now, "control_refused", event.reason))
        elif isinstance(event, ScheduleLoaded):
            self.recent.appendleft(Happening(now, "schedule", event.name))
        elif isinstance(event, ScheduleRefused):
            self.recent.appendleft(Happening(now, "schedule_refused", str(len(event.errors))))
        self.version += 1
