"""Captions and the lower third in OBS, cued from on-air events.

OBS shows our stream a little after we send it (its media buffer), so each sentence's caption
is cued for the moment OBS shows the sentence, not the moment it left us: the line's airing time
plus the configured delay. A caption is cleared a short while after the speech ends when a long
pause follows. While the host answers a viewer, the lower third shows the (masked) question;
scheduled lines clear it, fillers and apologies keep it. With a card input, the map card of a
sites answer is shown through OBS's Image Source while the answer airs.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Protocol

from PIL import Image

from anchor.events import AnswerAired, AnswerStarted, Event, LineAired
from anchor.messages import Card, Priority

log = logging.getLogger(__name__)

CAPTION_LINGER_S = 1.0
MAX_QUESTIONS = 200


class CaptionSink(Protocol):
    def show_caption(self, text: str | None, *, at: float) -> None: ...
    def show_lower_third(self, text: str | None, *, at: float) -> None: ...
    def show_card(self, path: str | None, *, at: float) -> None: ...


class CardFiles:
    """The card images OBS reads: two files used in turn, so a new card is a new path (OBS
    reloads an Image Source when its file changes) and the folder never grows."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._turn = 0

    async def write(self, card: Card) -> str | None:
        """The card as a PNG file; None (logged) when the disk refuses it."""
        self._turn = 1 - self._turn
        path = self._folder / f"card-{self._turn}.png"
        try:
            await asyncio.to_thread(_write_png, path, card)
        except OSError as exc:
            log.warning("cannot write the card for OBS (%s): it is not shown", exc)
            return None
        return str(path.resolve())


class ObsCaptions:
    KINDS: tuple[type, ...] = (LineAired, AnswerStarted, AnswerAired)

    def __init__(self, obs: CaptionSink, *, delay_s: float, cards: CardFiles | None = None) -> None:
        self._obs = obs
        self._delay = delay_s
        self._cards = cards
        self._card: str | None = None  # key of the card shown
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
            if self._cards is not None:
                await self._cue_card(event)

    async def _cue_card(self, event: LineAired) -> None:
        """The card of the answer on air in OBS's Image Source; hidden after the answer."""
        card, at = event.line.card, event.aired_at + self._delay
        key = None if card is None else card.key
        if key == self._card:
            return
        self._card = key
        assert self._cards is not None
        path = None if card is None else await self._cards.write(card)
        self._obs.show_card(path, at=at)

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


def _write_png(path: Path, card: Card) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    Image.fromarray(card.image).save(partial, format="PNG")
    partial.replace(path)  # OBS never reads a half-written file
