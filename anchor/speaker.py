"""Turns a line into samples ready to air.

The voice gives PCM at its own rate with its own leading and trailing silence; the speaker
trims that, brings it to the stream's rate and appends the silence the engine wants (the gap
between sentences and any pause the schedule asked for). So the rhythm of the show is set here,
in one place, whatever voice is speaking. A voice that fails costs one sentence of silence,
never the stream.
"""

from __future__ import annotations

import logging

import numpy as np

from anchor.messages import Line, SpokenLine
from anchor.speech.base import SpeechError, Voice
from anchor.speech.resample import to_rate, trim_silence
from anchor.speech.text import detect_language

log = logging.getLogger(__name__)


class Speaker:
    def __init__(
        self,
        voice: Voice,
        *,
        sample_rate: int,
        sentence_gap: float,
        max_sentence_seconds: float,
    ) -> None:
        self._voice = voice
        self._rate = sample_rate
        self._gap = sentence_gap
        self._max_samples = int(max_sentence_seconds * sample_rate)
        self.failures = 0

    async def speak(self, line: Line) -> SpokenLine:
        speech = await self._synthesize(line)
        silence = (
            round((self._gap + line.pause_after) * self._rate)
            if line.text
            else round(line.pause_after * self._rate)
        )
        samples = np.zeros(len(speech) + silence, dtype=np.float32)
        samples[: len(speech)] = speech
        return SpokenLine(line=line, samples=samples, speech_samples=len(speech))

    async def _synthesize(self, line: Line) -> np.ndarray:
        if not line.text.strip():
            return np.zeros(0, dtype=np.float32)
        language = line.language or detect_language(line.text)
        try:
            audio = await self._voice.synthesize(line.text, language)
        except SpeechError as exc:
            self.failures += 1
            log.error("voice %s could not say %r: %s", self._voice.name, line.text, exc)
            return np.zeros(0, dtype=np.float32)
        pcm = trim_silence(audio.pcm, audio.sample_rate)
        pcm = to_rate(pcm, audio.sample_rate, self._rate)
        if len(pcm) > self._max_samples:
            log.warning("sentence cut at %d samples: %r", self._max_samples, line.text[:40])
            pcm = pcm[: self._max_samples]
        return np.clip(pcm, -1.0, 1.0).astype(np.float32, copy=False)
