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

import asyncio
import contextlib
import logging
import multiprocessing
import re
import signal
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

import numpy as np

from anchor.messages import SpeechAudio, WordTiming
from anchor.speech.base import SpeechError, Voice
from anchor.speech.chain import NotForThisVoice, VoiceRestarting
from anchor.speech.sherpa_engine import serve
from anchor.speech.text import normalize_for_speech
from anchor.speech.visemes import cues_from_words

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0  # a 300 MB model and its dictionaries load in a few seconds
_NEUTRAL_RATE = 175  # words per minute that mean "the model's own pace"
_IGNORED_SIGNALS = {signal.SIGINT}  # the daemon owns shutdown: see sherpa_engine.serve
_FRAME_S = 0.01  # envelope frames for the timing estimate
_VOICED_DB = -35.0  # a frame this far below the loudest is a pause
_UNITS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[A-Za-z0-9']+")
_VOWELS = re.compile(r"[aeiouy]+", re.IGNORECASE)


class SherpaVoice(Voice):
    """Speaks with the model in `model_dir`; `speakers` maps a language to a speaker number.

    `rate` (words per minute, 175 = the model's pace) and `volume` (0..1) mean what they mean
    for the other voices; sherpa-onnx has no pitch control, so `pitch` is not used.
    """

    name = "sherpa"

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
        self._model_dir = Path(model_dir)
        self._speakers = {language.lower(): int(sid) for language, sid in speakers.items()}
        self._speed = max(1, rate) / _NEUTRAL_RATE
        self._volume = volume
        self._timeout = timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts-sherpa")
        self._child: _Child | None = None
        self._closed = False

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
    def child_pid(self) -> int | None:
        """The engine process's id while it runs (for tests and the operator's tools)."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    @property
    def sample_rate(self) -> int | None:
        """The model's own rate, once its engine has started."""
        return self._child.sample_rate if self._child is not None else None

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        if self._closed:
            raise SpeechError("the sherpa voice is closed")
        speaker = self._speaker_for(language)
        spoken = normalize_for_speech(text, language, respell_polyphones=False)
        if not spoken:
            return SpeechAudio(np.zeros(0, dtype=np.float32), 16_000)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._speak_on_worker, spoken, language, speaker
        )

    async def warm_up(self) -> None:
        """Start the engine now rather than on the first sentence."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._ensure_child)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._release)
        finally:
            self._executor.shutdown(wait=False)

    def _speaker_for(self, language: str) -> int:
        wanted = language.lower()
        for candidate in (wanted, wanted.replace("_", "-").split("-")[0]):
            if candidate in self._speakers:
                return self._speakers[candidate]
        known = ", ".join(sorted(self._speakers))
        raise NotForThisVoice(f"the installed model speaks {known}, not {language!r}")

    def _speak_on_worker(self, text: str, language: str, speaker: int) -> SpeechAudio:
        child = self._ensure_child()
        take = child.speak(text, speaker, self._speed, self._timeout)
        if take is None:  # died or hung: it has been stopped; start a fresh one for what's next
            self._child = None
            if not self._closed:
                self._executor.submit(self._restart_quietly)
            raise VoiceRestarting("the sherpa voice's engine stopped; restarting it")
        pcm16, rate = take
        pcm = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32767.0
        if not len(pcm):
            raise NotForThisVoice(f"the installed model has no words for {text[:40]!r}")
        if self._volume != 1.0:
            pcm *= max(0.0, self._volume)
        timings = estimate_timings(text, pcm, rate)
        return SpeechAudio(pcm, rate, timings, cues_from_words(timings, language))

    def _ensure_child(self) -> _Child:
        if self._child is None or not self._child.alive:
            self._child = _Child.start(self._model_dir)
            top = max(self._speakers.values())
            if self._child.speakers > 1 and top >= self._child.speakers:
                speakers = self._child.speakers
                self._release()
                raise SpeechError(
                    f"sherpa voice: speaker {top} asked for, but {self._model_dir} has "
                    f"speakers 0..{speakers - 1}"
                )
        return self._child

    def _restart_quietly(self) -> None:
        if self._closed or (self._child is not None and self._child.alive):
            return
        try:
            self._ensure_child()
        except SpeechError as exc:
            log.warning("the sherpa voice's engine did not restart: %s", exc)

    def _release(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None


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


class _Child:
    """The engine's process, seen from the voice's worker thread."""

    def __init__(
        self, process: multiprocessing.process.BaseProcess, conn: Connection, ready: tuple[Any, ...]
    ) -> None:
        self._process = process
        self._conn = conn
        self.sample_rate = int(ready[1])
        self.speakers = int(ready[2])

    @classmethod
    def start(cls, model_dir: Path) -> _Child:
        context = multiprocessing.get_context("spawn")  # never fork a threaded daemon
        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve, args=(theirs, str(model_dir)), name="anchor-sherpa", daemon=True
        )
        with _signals_blocked(_IGNORED_SIGNALS):
            process.start()
        theirs.close()
        reply = _receive(ours, _START_TIMEOUT_S)
        if reply is None or reply[0] != "ready":
            _stop(process, ours)
            code = process.exitcode
            problem = (
                reply[1]
                if reply is not None
                else f"the engine ended while loading {model_dir} (exit code {code}; "
                "sherpa-onnx's own message is above)"
            )
            raise SpeechError(f"sherpa voice: {problem}")
        return cls(process, ours, reply)

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def speak(
        self, text: str, speaker: int, speed: float, timeout: float
    ) -> tuple[bytes, int] | None:
        """(16-bit samples, sample rate), or None when the child died or hung."""
        try:
            self._conn.send((text, speaker, speed))
        except (OSError, ValueError):
            _stop(self._process, self._conn, polite=False)
            return None
        reply = _receive(self._conn, timeout)
        if reply is None:  # dead or hung: no point asking it to finish
            _stop(self._process, self._conn, polite=False)
            return None
        if reply[0] != "ok":
            raise SpeechError(f"sherpa voice: {reply[1]}")
        return reply[1], int(reply[2])

    def stop(self) -> None:
        _stop(self._process, self._conn)


def _receive(conn: Connection, timeout: float) -> tuple[Any, ...] | None:
    try:
        if not conn.poll(timeout):
            log.error("the sherpa voice's engine gave no answer in %.0f s", timeout)
            return None
        reply: tuple[Any, ...] = conn.recv()
        return reply
    except (EOFError, OSError):
        return None


def _stop(
    process: multiprocessing.process.BaseProcess, conn: Connection, *, polite: bool = True
) -> None:
    """Ask the engine to end (or not, when it is dead or hung), then make sure it has."""
    if polite:
        with contextlib.suppress(OSError, ValueError):
            conn.send(None)
        process.join(timeout=2.0)
    if process.is_alive():
        process.kill()
        process.join(timeout=2.0)
    conn.close()


@contextlib.contextmanager
def _signals_blocked(signals: set[signal.Signals]) -> Iterator[None]:
    """See espeak_voice: the child inherits the mask until it ignores SIGINT itself."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
