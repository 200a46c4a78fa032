"""A voice from a model the operator installed: sherpa-onnx, offline, in a child process.

The better Mandarin voices (MeloTTS, Kokoro, the VITS voices sherpa-onnx converts) are in no
package registry; an operator downloads one elsewhere and installs it with `anchor voice
install` (`anchor.speech.install`), which writes a profile naming this engine. The model runs
in a child process, as the other offline engines do: its memory stays out of the daemon, and a
crash, a hang or a kill costs one sentence, which the chain's next voice says (`VoiceRestarting`)
while a fresh child starts on this voice's own thread for the next one.

sherpa-onnx reports no phoneme timing for most models, so the words' times are estimated from
the audio: the voiced stretches are shared among the sentence's syllables, and the lips follow
`visemes.cues_from_words` as for the other voices without timing. The profile's `voices` map a
language to the model's speaker number; a language not listed goes to the next voice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np

from anchor.messages import SpeechAudio, WordTiming
from anchor.speech.base import SpeechError
from anchor.speech.chain import NotForThisVoice
from anchor.speech.engine_process import EngineProcess, EngineVoice
from anchor.speech.sherpa_engine import serve
from anchor.speech.text import normalize_for_speech
from anchor.speech.visemes import cues_from_words

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0  # a 300 MB model and its dictionaries load in a few seconds
_NEUTRAL_RATE = 175  # words per minute that mean "the model's own pace"
_FRAME_S = 0.01  # envelope frames for the timing estimate
_VOICED_DB = -35.0  # a frame this far below the loudest is a pause
_UNITS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[A-Za-z0-9']+")
_VOWELS = re.compile(r"[aeiouy]+", re.IGNORECASE)


class SherpaVoice(EngineVoice[EngineProcess]):
    """Speaks with the model in `model_dir`; `speakers` maps a language to a speaker number.

    `rate` (words per minute, 175 = the model's pace) and `volume` (0..1) mean what they mean
    for the other voices; sherpa-onnx has no pitch control, so `pitch` is not used.
    """

    name = "sherpa"
    label = "the sherpa voice"

    def __init__(
        self,
        model_dir: Path,
        speakers: Mapping[str, str | int],
        *,
        rate: int = _NEUTRAL_RATE,
        volume: float = 1.0,
        timeout_seconds: float = 15.0,
    ) -> None:
        if not speakers:
            raise ValueError("SherpaVoice needs at least one language -> speaker entry")
        super().__init__("tts-sherpa")
        self._model_dir = Path(model_dir)
        self._speakers = {language.lower(): int(sid) for language, sid in speakers.items()}
        self._speed = max(1, rate) / _NEUTRAL_RATE
        self._volume = volume
        self._timeout = timeout_seconds
        self._model_rate: int | None = None

    @classmethod
    def from_profile(cls, profile: Any) -> Self:
        if profile.model_dir is None:
            raise SpeechError("engine sherpa needs model_dir (the installed model's folder)")
        return cls(
            profile.model_dir,
            dict(profile.voices),
            rate=profile.rate,
            volume=profile.volume,
            timeout_seconds=profile.timeout_seconds,
        )

    @property
    def sample_rate(self) -> int | None:
        """The model's own rate, once its engine has started."""
        return self._model_rate

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        self._check_open()
        speaker = self._speaker_for(language)
        spoken = normalize_for_speech(text, language, respell_polyphones=False)
        if not spoken:
            return SpeechAudio(np.zeros(0, dtype=np.float32), 16_000)
        audio: SpeechAudio = await self._on_worker(self._speak_on_worker, spoken, language, speaker)
        return audio

    def _speaker_for(self, language: str) -> int:
        wanted = language.lower()
        for candidate in (wanted, wanted.replace("_", "-").split("-")[0]):
            if candidate in self._speakers:
                return self._speakers[candidate]
        known = ", ".join(sorted(self._speakers))
        raise NotForThisVoice(f"the installed model speaks {known}, not {language!r}")

    def _start_engine(self) -> EngineProcess:
        """The engine for the model, once it says its rate and how many speakers it has."""
        child, ready = EngineProcess.start(
            serve, (str(self._model_dir),), name="anchor-sherpa", label="sherpa voice",
            timeout=_START_TIMEOUT_S,
        )  # fmt: skip
        rate, speakers = int(ready[1]), int(ready[2])
        top = max(self._speakers.values())
        if speakers > 1 and top >= speakers:
            child.stop()
            raise SpeechError(
                f"sherpa voice: speaker {top} asked for, but {self._model_dir} has "
                f"speakers 0..{speakers - 1}"
            )
        self._model_rate = rate
        return child

    def _speak_on_worker(self, text: str, language: str, speaker: int) -> SpeechAudio:
        reply = self._ensure_child().ask((text, speaker, self._speed), self._timeout)
        if reply is None:
            raise self._engine_lost()
        pcm16, rate = reply[1], int(reply[2])
        pcm = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32767.0
        if not len(pcm):
            raise NotForThisVoice(f"the installed model has no words for {text[:40]!r}")
        if self._volume != 1.0:
            pcm *= max(0.0, self._volume)
        timings = estimate_timings(text, pcm, rate)
        return SpeechAudio(pcm, rate, timings, cues_from_words(timings, language))


def estimate_timings(text: str, pcm: np.ndarray, rate: int) -> tuple[WordTiming, ...]:
    """Each syllable's time, from the audio: the voiced frames, shared out in reading order.

    A Chinese character counts one syllable, a Latin word one per vowel group. Pauses (frames
    far below the loudest) belong to nobody, so the lips close in them and the syllables
    around a comma land on the sound before and after it.
    """
    units = _UNITS.findall(text)
    frame = max(1, int(rate * _FRAME_S))
    count = len(pcm) // frame
    if not units or count == 0:
        return ()
    rms = np.sqrt(np.mean(np.square(pcm[: count * frame].reshape(count, frame)), axis=1))
    peak = float(rms.max())
    if peak <= 0.0:
        return ()
    voiced = rms >= peak * 10 ** (_VOICED_DB / 20)
    frames = np.flatnonzero(voiced)
    weights = np.array([_syllables(unit) for unit in units], dtype=np.float64)
    edges = np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum() * len(frames)
    timings = []
    for index, unit in enumerate(units):
        first = min(int(edges[index]), len(frames) - 1)
        last = max(first, min(int(np.ceil(edges[index + 1])) - 1, len(frames) - 1))
        start, end = frames[first] * _FRAME_S, (frames[last] + 1) * _FRAME_S
        timings.append(WordTiming(unit, float(start), float(end)))
    return tuple(timings)


def _syllables(unit: str) -> int:
    if len(unit) == 1 and not unit.isascii():
        return 1
    return max(1, len(_VOWELS.findall(unit)))
