"""Turns a line into samples ready to air.

The voice gives PCM at its own rate with its own leading and trailing silence; the speaker
trims that, brings it to the stream's rate and appends the silence the engine wants (the gap
between sentences and any pause the schedule asked for). So the rhythm of the show is set here,
in one place, whatever voice is speaking. A voice that fails costs one sentence of silence,
never the stream.

Lip-shape cues and word timings count from the voice's first sample; they are shifted by the
silence trimmed off the front and cut where the speech is cut, so they still count from the
first sample that airs. A voice that reports words but no cues gets cues from its words.

Loudness is set here too (`anchor.speech.loudness`): every sentence airs at the stream's
target whatever voice spoke it, its peaks low enough to stay under −1 dBFS through the AAC
encoder. Measuring and limiting take tens of milliseconds for a long sentence, so they run off
the event loop.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from anchor.messages import Line, MouthCue, SpokenLine, WordTiming
from anchor.speech.base import SpeechError, Voice
from anchor.speech.loudness import DEFAULT_TARGET_LUFS, LoudnessLeveller
from anchor.speech.resample import speech_bounds, to_rate
from anchor.speech.text import detect_language
from anchor.speech.visemes import cues_from_words

log = logging.getLogger(__name__)


class Speaker:
    def __init__(
        self,
        voice: Voice,
        *,
        sample_rate: int,
        sentence_gap: float,
        max_sentence_seconds: float,
        loudness_lufs: float | None = DEFAULT_TARGET_LUFS,
    ) -> None:
        """`loudness_lufs` None airs each voice at its own level (peaks still clipped at
        full scale)."""
        self._voice = voice
        self._rate = sample_rate
        self._gap = sentence_gap
        self._max_samples = int(max_sentence_seconds * sample_rate)
        self._leveller = (
            None if loudness_lufs is None else LoudnessLeveller(sample_rate, loudness_lufs)
        )
        self.failures = 0

    async def speak(self, line: Line) -> SpokenLine:
        speech, timings, cues = await self._synthesize(line)
        silence = (
            round((self._gap + line.pause_after) * self._rate)
            if line.text
            else round(line.pause_after * self._rate)
        )
        samples = np.zeros(len(speech) + silence, dtype=np.float32)
        samples[: len(speech)] = speech
        return SpokenLine(
            line=line, samples=samples, speech_samples=len(speech), timings=timings, cues=cues
        )

    async def _synthesize(
        self, line: Line
    ) -> tuple[np.ndarray, tuple[WordTiming, ...], tuple[MouthCue, ...]]:
        silent = (np.zeros(0, dtype=np.float32), (), ())
        if not line.text.strip():
            return silent
        language = line.language or detect_language(line.text)
        try:
            audio = await self._voice.synthesize(line.text, language)
        except SpeechError as exc:
            self.failures += 1
            log.error("voice %s could not say %r: %s", self._voice.name, line.text, exc)
            return silent
        start, end = speech_bounds(audio.pcm, audio.sample_rate)
        pcm = to_rate(
            np.asarray(audio.pcm, dtype=np.float32)[start:end], audio.sample_rate, self._rate
        )
        if len(pcm) > self._max_samples:
            log.warning("sentence cut at %d samples: %r", self._max_samples, line.text[:40])
            pcm = pcm[: self._max_samples]
        offset = start / audio.sample_rate
        length = len(pcm) / self._rate
        timings = _shift_timings(audio.timings, offset, length)
        cues = audio.cues or cues_from_words(audio.timings, language)
        cues = _shift_cues(cues, offset, length)
        if self._leveller is not None and len(pcm):
            pcm = await asyncio.to_thread(self._leveller.level, pcm)
        return np.clip(pcm, -1.0, 1.0).astype(np.float32, copy=False), timings, cues


def _shift_timings(
    timings: tuple[WordTiming, ...], offset: float, length: float
) -> tuple[WordTiming, ...]:
    """Word timings from the first aired sample; words cut off entirely are dropped."""
    shifted = []
    for word in timings:
        start = max(0.0, word.start - offset)
        if start < length:
            shifted.append(WordTiming(word.text, start, min(length, max(start, word.end - offset))))
    return tuple(shifted)


def _shift_cues(cues: tuple[MouthCue, ...], offset: float, length: float) -> tuple[MouthCue, ...]:
    """Cues from the first aired sample: the cue active at the cut holds from 0, later ones
    keep their place, and those past the end of the aired speech are dropped."""
    shifted: list[MouthCue] = []
    for cue in sorted(cues, key=lambda c: c.start):
        start = cue.start - offset
        if start >= length:
            break
        if start <= 0.0:
            shifted = [MouthCue(0.0, cue.shape)]
        else:
            shifted.append(MouthCue(start, cue.shape))
    return tuple(shifted)
