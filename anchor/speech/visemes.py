"""Lip shapes (visemes) from what a voice says about its timing.

A mouth that only follows loudness opens the same way for "ma" and "mu" and never closes on
"m", "b" or "p", which viewers read as dubbed. Voices report timing at two grains: espeak-ng
names every phoneme with its position in the audio, while neural voices (edge-tts) only say
where each word starts and ends. Both are turned here into `MouthCue`s, the one shape track
the playout understands; the loudness still decides how far the mouth opens.

Only four shapes exist (`MouthShape`), so the mapping is coarse on purpose: lips together
(m b p and pauses), jaw open (a and other open vowels, back consonants), lips spread (i, e,
sibilants and the tongue-tip consonants, f/v showing the teeth) and lips rounded (u, o, ü, w).
A diphthong or a Mandarin final that glides between two shapes ("ua", "ai", "iou") gets both,
one after the other within its time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from anchor.messages import MouthCue, MouthShape, WordTiming

CLOSED, OPEN, WIDE, ROUND = MouthShape.CLOSED, MouthShape.OPEN, MouthShape.WIDE, MouthShape.ROUND

# espeak-ng phoneme mnemonics as its phoneme events report them, for the English (en-us) and
# Mandarin (cmn-latn-pinyin) phoneme tables; the two share one namespace, so a name means the
# same shape in both ("y" is Mandarin ü; English spells the y-glide "j").
_PHONEMES: dict[str, tuple[MouthShape, ...]] = {
    # lips together
    **dict.fromkeys(["m", "b", "p", "ph", "m-", "mh"], (CLOSED,)),
    # jaw open: open and central vowels, back consonants
    **dict.fromkeys(
        ["a", "a#", "A", "A:", "A@", "V", "@", "@2", "@5", "3", "3:", "@r", "0", "a:", "aa"],
        (OPEN,),
    ),
    **dict.fromkeys(["k", "kh", "g", "N", "X", "h", "x", "@L", "n-"], (OPEN,)),
    # lips spread: front vowels, sibilants, tongue-tip consonants, teeth on the lip
    **dict.fromkeys(
        ["i", "i:", "I", "I#", "I2", "i.", "i[", "e", "e:", "E", "E:", "e@", "eI", "ei", "iE"],
        (WIDE,),
    ),
    **dict.fromkeys(
        ["s", "z", "S", "Z", "tS", "dZ", "T", "D", "t", "t#", "d", "th", "n", "l", "j", ";"],
        (WIDE,),
    ),
    **dict.fromkeys(
        ["ts", "tsh", "ts.", "ts.h", "s.", "z.", "tS;", "tS;h", "S;", "f", "v", "dz"], (WIDE,)
    ),
    # lips rounded
    **dict.fromkeys(
        ["u", "u:", "U", "U@", "o", "o-", "o:", "O", "O:", "O@", "o@", "oU", "ou", "ong", "uo"],
        (ROUND,),
    ),
    **dict.fromkeys(["u@", "w", "y", "y&", "y@", "yu", "r", "W"], (ROUND,)),
    # glides between two shapes
    "aI": (OPEN, WIDE),
    "ai": (OPEN, WIDE),
    "aU": (OPEN, ROUND),
    "Au": (OPEN, ROUND),
    "OI": (ROUND, WIDE),
    "iA": (WIDE, OPEN),
    "ua": (ROUND, OPEN),
    "uei": (ROUND, WIDE),
    "yE": (ROUND, WIDE),
    "iou": (WIDE, ROUND),
    "i@": (WIDE, OPEN),
    "i@3": (WIDE, OPEN),
    "e@3": (WIDE, OPEN),
}

# The first letter decides for names the tables above do not list (other languages' tables).
_BY_LETTER: dict[str, MouthShape] = {
    **dict.fromkeys("mbp_", CLOSED),
    **dict.fromkeys("aA@3Vkgxhq0", OPEN),
    **dict.fromkeys("ieEIjszSZtdTDnlcfv;", WIDE),
    **dict.fromkeys("uUoOwyYrW", ROUND),
}

# Mandarin syllables for the word fallback: pinyin initials and the letters of finals.
_PINYIN_INITIALS: dict[str, MouthShape] = {
    **dict.fromkeys(["b", "p", "m"], CLOSED),
    **dict.fromkeys(["g", "k", "h"], OPEN),
}
_PINYIN_FINAL_LETTERS: dict[str, MouthShape] = {
    "a": OPEN,
    "e": OPEN,
    "o": ROUND,
    "u": ROUND,
    "v": ROUND,
    "i": WIDE,
}

# English words for the word fallback: spelling is a rough guide, which is all a word needs.
_LETTERS: dict[str, MouthShape] = {
    **dict.fromkeys("mbp", CLOSED),
    **dict.fromkeys("aghkq", OPEN),
    **dict.fromkeys("eiycdfjlnstvxz", WIDE),
    **dict.fromkeys("ouwr", ROUND),
}
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_MAX_WORD_SHAPES = 8
_SYLLABLE_GAP = "_|"


def phoneme_shapes(name: str) -> tuple[MouthShape, ...]:
    """The shape(s) the lips take for one espeak-ng phoneme mnemonic, in order."""
    found = _PHONEMES.get(name)
    if found is not None:
        return found
    if name.startswith("_"):  # pauses: "_", "_:", "_|", "_!"
        return (CLOSED,)
    stripped = name.rstrip("0123456789:;#.,'!-")
    found = _PHONEMES.get(stripped)
    if found is not None:
        return found
    return (_BY_LETTER.get(name[:1], OPEN),) if name else (OPEN,)


def cues_from_phonemes(phonemes: Iterable[tuple[float, str]], end: float) -> tuple[MouthCue, ...]:
    """Cues from (start seconds, mnemonic) phoneme events; the last phoneme lasts until `end`.

    Events at the same instant (espeak-ng reports a syllable boundary and the next consonant
    together) leave only the last one, which is the sound actually heard.
    """
    events = _anticipate(sorted(phonemes, key=lambda event: event[0]))
    spans: list[tuple[float, float, tuple[MouthShape, ...]]] = []
    for i, (start, name) in enumerate(events):
        stop = events[i + 1][0] if i + 1 < len(events) else end
        if stop > start:
            spans.append((start, stop, phoneme_shapes(name)))
    return _merge(_spread(spans))


def _anticipate(events: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """Syllable-boundary gaps ("_|") take the next phoneme's shape.

    The gap is mostly the closure of the stop that follows ("大家" has one before "j"), and
    the lips are already in that consonant's position; shutting them would flicker.
    """
    out: list[tuple[float, str]] = []
    pending: float | None = None
    for start, name in events:
        if name == _SYLLABLE_GAP:
            pending = start if pending is None else pending
            continue
        out.append((start if pending is None else pending, name))
        pending = None
    if pending is not None:
        out.append((pending, "_"))
    return out


def word_shapes(word: str, language: str) -> tuple[MouthShape, ...]:
    """The shapes a word passes through, from its spelling (Chinese via pinyin)."""
    text = unicodedata.normalize("NFKC", word).lower()
    if language.lower().startswith("zh") or _HAN.search(text):
        shapes = _pinyin_shapes(text)
    else:
        shapes = _spelling_shapes(text)
    return tuple(_dedupe(shapes)[:_MAX_WORD_SHAPES])


def cues_from_words(timings: Sequence[WordTiming], language: str) -> tuple[MouthCue, ...]:
    """Cues from word boundaries: each word's shapes spread over its time, lips shut between."""
    spans: list[tuple[float, float, tuple[MouthShape, ...]]] = []
    for i, word in enumerate(timings):
        shapes = word_shapes(word.text, language)
        if shapes and word.end > word.start:
            spans.append((word.start, word.end, shapes))
        following = timings[i + 1].start if i + 1 < len(timings) else None
        if following is None or following > word.end:
            spans.append((word.end, word.end if following is None else following, (CLOSED,)))
    return _merge(_spread(spans, keep_instant=True))


def _pinyin_shapes(text: str) -> list[MouthShape]:
    from pypinyin import Style, lazy_pinyin

    initials = lazy_pinyin(text, style=Style.INITIALS, strict=True, errors="ignore")
    finals = lazy_pinyin(text, style=Style.FINALS, strict=True, errors="ignore")
    shapes: list[MouthShape] = []
    for initial, final in zip(initials, finals, strict=False):
        if initial:
            shapes.append(_PINYIN_INITIALS.get(initial, WIDE))
        shapes.extend(
            _dedupe(_PINYIN_FINAL_LETTERS[c] for c in final if c in _PINYIN_FINAL_LETTERS)
        )
    return shapes


def _spelling_shapes(text: str) -> list[MouthShape]:
    letters = [c for c in text if "a" <= c <= "z"]
    if len(letters) > 2 and letters[-1] == "e":  # a silent final e ("make", "home")
        letters.pop()
    return [_LETTERS[c] for c in letters if c in _LETTERS]


def _dedupe(shapes: Iterable[MouthShape]) -> list[MouthShape]:
    out: list[MouthShape] = []
    for shape in shapes:
        if not out or out[-1] != shape:
            out.append(shape)
    return out


def _spread(
    spans: Iterable[tuple[float, float, tuple[MouthShape, ...]]], *, keep_instant: bool = False
) -> list[MouthCue]:
    """Each span's shapes at equal shares of its time."""
    cues: list[MouthCue] = []
    for start, stop, shapes in spans:
        if stop <= start:
            if keep_instant:
                cues.append(MouthCue(start, shapes[-1]))
            continue
        step = (stop - start) / len(shapes)
        cues.extend(MouthCue(start + k * step, shape) for k, shape in enumerate(shapes))
    return cues


def _merge(cues: Iterable[MouthCue]) -> tuple[MouthCue, ...]:
    """In time order; a cue that repeats the shape before it, or is overtaken, is dropped."""
    ordered: list[MouthCue] = []
    for cue in sorted(cues, key=lambda c: c.start):
        if ordered and ordered[-1].start == cue.start:
            ordered[-1] = cue
        else:
            ordered.append(cue)
    merged: list[MouthCue] = []
    for cue in ordered:
        if not merged or merged[-1].shape != cue.shape:
            merged.append(cue)
    return tuple(merged)
