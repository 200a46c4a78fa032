"""The online neural voice: Microsoft Edge's read-aloud service through the edge-tts package.

It sounds far better than espeak-ng but lives on someone else's server, so every sentence is
bounded by one overall timeout (a stalled connection has been seen to hang for minutes, and
edge-tts's own socket timeouts only bound each read); running out of time or any service
error is a SpeechError, and the voice chain moves on to the next voice.

The service answers with MP3 and word boundaries (offset and duration in 100-ns ticks); the
MP3 is decoded with PyAV off the event loop, the boundaries become word timings and, through
`visemes.cues_from_words`, the mouth shapes the avatar takes.

A profile may name an `endpoint` (a wss:// relay, or a stand-in server in tests). edge-tts
has no argument for the service URL: `edge_tts.communicate` builds it from its module
attribute `WSS_URL` when it connects. So the URL is set there for the length of each
synthesis, under a lock shared by every EdgeVoice on the event loop; without the lock, a
voice without an endpoint could connect to another voice's relay, or the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

import numpy as np

from anchor.messages import SpeechAudio, WordTiming
from anchor.speech.base import SpeechError, Voice, voice_for_language
from anchor.speech.decode import decode_audio
from anchor.speech.visemes import cues_from_words

TICKS_PER_SECOND = 10_000_000
NEUTRAL_RATE_WPM = 175
NEUTRAL_PITCH = 50
DEFAULT_TIMEOUT_S = 8.0

_url_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


class EdgeVoice(Voice):
    """Speaks with an Edge neural voice ("zh-CN-XiaoxiaoNeural") per language.

    `rate` (words per minute), `volume` (0..1) and `pitch` (0..99) use the profile's shared
    units and are sent as edge-tts's relative settings: 175 wpm is "+0%", 210 wpm "+20%";
    volume 0.8 is "-20%"; each pitch step away from 50 is one hertz.
    """

    name = "edge-tts"

    def __init__(
        self,
        voices: Mapping[str, str],
        *,
        default_language: str | None = None,
        rate: int = NEUTRAL_RATE_WPM,
        volume: float = 1.0,
        pitch: int = NEUTRAL_PITCH,
        timeout_seconds: float = DEFAULT_TIMEOUT_S,
        endpoint: str | None = None,
    ) -> None:
        if not voices:
            raise ValueError("EdgeVoice needs at least one language -> voice id entry")
        self._voices = {language.lower(): voice_id for language, voice_id in voices.items()}
        self._default_language = default_language.lower() if default_language else None
        self._rate = f"{round((rate / NEUTRAL_RATE_WPM - 1) * 100):+d}%"
        self._volume = f"{round((volume - 1) * 100):+d}%"
        self._pitch = f"{pitch - NEUTRAL_PITCH:+d}Hz"
        self._timeout = timeout_seconds
        self._endpoint = endpoint
        self._closed = False

    @classmethod
    def from_profile(cls, profile: Any) -> EdgeVoice:
        """Build from a voice profile (`voices`, `default_language`, `rate`, `volume`,
        `pitch`, `timeout_seconds`, `endpoint`)."""
        return cls(
            dict(profile.voices),
            default_language=profile.default_language,
            rate=profile.rate,
            volume=profile.volume,
            pitch=profile.pitch,
            timeout_seconds=profile.timeout_seconds,
            endpoint=profile.endpoint,
        )

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        if self._closed:
            raise SpeechError("the edge-tts voice is closed")
        if not text.strip():
            return SpeechAudio(np.zeros(0, dtype=np.float32), 24000)
        voice_id = self._voice_for(language)
        try:
            async with asyncio.timeout(self._timeout):
                mp3, boundaries = await self._fetch(text, voice_id)
        except TimeoutError:
            raise SpeechError(
                f"edge-tts gave no complete answer within {self._timeout:g} s"
            ) from None
        return await asyncio.to_thread(_speech_audio, mp3, boundaries, language)

    async def aclose(self) -> None:
        self._closed = True

    def _voice_for(self, language: str) -> str:
        return voice_for_language(self._voices, language, self._default_language, "edge-tts")

    async def _fetch(self, text: str, voice_id: str) -> tuple[bytes, list[Mapping[str, Any]]]:
        try:
            import edge_tts
            import edge_tts.communicate
        except ImportError as exc:
            raise SpeechError(f"{exc} (install it with: pip install edge-tts)") from exc
        try:
            communicate = edge_tts.Communicate(
                text,
                voice_id,
                rate=self._rate,
                volume=self._volume,
                pitch=self._pitch,
                boundary="WordBoundary",
                connect_timeout=max(1, round(self._timeout)),
                receive_timeout=max(1, round(self._timeout)),
            )
        except (TypeError, ValueError) as exc:
            raise SpeechError(f"edge-tts refused the settings: {exc}") from exc
        audio = bytearray()
        boundaries: list[Mapping[str, Any]] = []
        try:
            async with (
                _service_url(edge_tts, self._endpoint),
                contextlib.aclosing(communicate.stream()) as chunks,
            ):
                async for chunk in chunks:
                    if chunk["type"] == "audio":
                        audio.extend(chunk["data"])
                    elif chunk["type"] == "WordBoundary":
                        boundaries.append(chunk)
        except (SpeechError, asyncio.CancelledError):
            raise
        except Exception as exc:  # edge-tts and aiohttp raise many kinds; all mean "no voice"
            raise SpeechError(f"edge-tts failed: {type(exc).__name__}: {exc}") from exc
        return bytes(audio), boundaries


@contextlib.asynccontextmanager
async def _service_url(edge_tts: Any, endpoint: str | None) -> AsyncIterator[None]:
    """edge-tts connects to `endpoint` (or its own service) inside this block.

    edge-tts appends "&ConnectionId=..." to the URL, so an endpoint without a query string
    gets a "?" to keep the URL well formed.
    """
    module = edge_tts.communicate
    wanted = edge_tts.constants.WSS_URL
    if endpoint is not None:
        wanted = endpoint if "?" in endpoint else f"{endpoint}?"
    loop = asyncio.get_running_loop()
    lock = _url_locks.get(loop)
    if lock is None:
        lock = _url_locks[loop] = asyncio.Lock()
    async with lock:
        previous = module.WSS_URL
        module.WSS_URL = wanted
        try:
            yield
        finally:
            module.WSS_URL = previous


def _speech_audio(mp3: bytes, boundaries: list[Mapping[str, Any]], language: str) -> SpeechAudio:
    """Decoded samples, word timings, and the lip shapes those words imply."""
    pcm, rate = decode_audio(mp3, "mp3")
    timings = _word_timings(boundaries)
    return SpeechAudio(pcm, rate, timings=timings, cues=cues_from_words(timings, language))


def _word_timings(boundaries: list[Mapping[str, Any]]) -> tuple[WordTiming, ...]:
    timings = []
    for boundary in boundaries:
        start = boundary["offset"] / TICKS_PER_SECOND
        end = start + boundary["duration"] / TICKS_PER_SECOND
        timings.append(WordTiming(text=str(boundary["text"]), start=start, end=end))
    return tuple(timings)
