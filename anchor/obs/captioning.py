"""Captions and the lower third in OBS, cued from on-air events.

OBS shows our stream a little after we send it (its media buffer), so each sentence's caption
is cued for the moment OBS shows the sentence, not the moment it left us: the line's airing time
plus the configured delay. A caption is cleared a short while after the speech ends when a long
pause follows. While the host answers a viewer, the lower third shows the (masked) question;
scheduled lines clear it, fillers and apologies keep it.
"""

from __future__ import annotations

from typing import Protocol

from anchor.events import AnswerAired, AnswerStarted, Event, LineAired
from anchor.messages import Priority

CAPTION_LINGER_S = 1.0
MAX_QUESTIONS = 200


class CaptionSink(Protocol):
    def show_caption(self, text: str | None, *, at: float) -> None: ...
    def show_lower_third(self, text: str | None, *, at: float) -> None: ...


class ObsCaptions:
    KINDS: tuple[type, ...] = (LineAired, AnswerStarted, AnswerAired)

    def __init__(self, obs: CaptionSink, *, delay_s: float) -> None:
        self._obs = obs
        self._delay = delay_s
        self._questions: dict[str, str] = {}  # question id → masked text, while it is answered

    async def handle(self, event: Event) -> None:
        if isinstance(event, AnswerStarted):
            if len(self._questions) >= MAX_QUESTIONS:
                self._questions.pop(next(iter(self._questions)))
            self._questions[event.waiting.question.id] = event.waiting.masked_text
        elif isinstance(event, AnswerAired):
            self._questions.pop(event.waiting.question.id, None)
        elif isinstance(event, LineAired) and event.line.text:
            self._cue(event)

    def _cue(self, event: LineAired) -> None:
        line, at = event.line, event.aired_at + self._delay
        self._obs.show_caption(line.text, at=at)
        if event.tail_seconds > CAPTION_LINGER_S + 0.5:
            self._obs.show_caption(None, at=at + event.speech_seconds + CAPTION_LINGER_S)
        if line.question_id is not None:
            question = self._questions.get(line.question_id)
            if question:
                self._obs.show_lower_third(f"正在回答：{question}", at=at)
        elif line.priority is not Priority.ANSWER:  # fillers and apologies keep it
            self._obs.show_lower_third(None, at=at)
