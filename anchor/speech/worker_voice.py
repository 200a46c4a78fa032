"""The shape shared by voices whose engine must live on one thread of their own.

espeak-ng and pyttsx3 are blocking, process-global C engines: every call has to come from the
same thread and none may run on the event loop. A `WorkerVoice` owns that one thread; the
subclass says how a sentence is spoken there (`_speak_on_worker`) and how the engine is let go
(`_release_on_worker`), and everything else (language → voice id, text preparation, closing)
is the same for both.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

import numpy as np

from anchor.messages import SpeechAudio
from anchor.speech.base import SpeechError, Voice, voice_for_language
from anchor.speech.text import normalize_for_speech


class WorkerVoice(Voice):
    """`voices` maps a language ("zh", "en") to an engine voice id ("cmn-latn-pinyin",
    "en-us"); a language without an entry falls back to its primary subtag ("zh-CN" -> "zh"),
    then to `default_language`. `rate` is words per minute, `volume` 0..1, `pitch` 0..99.
    """

    name: str
    silence_rate = 22050  # the sample rate given to the empty audio of a blank sentence

    def __init__(
        self,
        voices: Mapping[str, str],
        rate: int = 175,
        volume: float = 1.0,
        pitch: int = 50,
        *,
        default_language: str | None = None,
    ) -> None:
        if not voices:
            raise ValueError(f"{type(self).__name__} needs at least one language -> voice entry")
        self._voices = {language.lower(): voice_id for language, voice_id in voices.items()}
        self._default_language = default_language.lower() if default_language else None
        self._rate = rate
        self._volume = volume
        self._pitch = pitch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tts-{self.name}")
        self._closed = False

    @classmethod
    def from_profile(cls, profile: Any) -> Self:
        """Build from a voice profile with `voices, default_language, rate, volume, pitch`."""
        return cls(
            dict(profile.voices),
            rate=profile.rate,
            volume=profile.volume,
            pitch=profile.pitch,
            default_language=profile.default_language,
        )

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        if self._closed:
            raise SpeechError(f"the {self.name} voice is closed")
        spoken = normalize_for_speech(text, language)
        if not spoken:
            return SpeechAudio(np.zeros(0, dtype=np.float32), self.silence_rate)
        voice_id = voice_for_language(self._voices, language, self._default_language, self.name)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._speak_on_worker, spoken, voice_id)

    async def aclose(self) -> None:
        """Let queued syntheses finish, release the engine, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._release_on_worker)
        finally:
            self._executor.shutdown(wait=False)

    @abstractmethod
    def _speak_on_worker(self, text: str, voice_id: str) -> SpeechAudio:
        """On the voice's thread: speak `text` (already prepared) with `voice_id`."""

    @abstractmethod
    def _release_on_worker(self) -> None:
        """On the voice's thread: let the engine go."""
