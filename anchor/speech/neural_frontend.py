"""From a Mandarin sentence to the phoneme ids the neural voice's acoustic model reads.

The model was trained on the Baker corpus's labels: each syllable is an initial ("^" when it
has none) and a final carrying its tone ("ao3"), syllables are joined by "#0", "#3" marks a
phrase break (where a comma is), and "sil" opens and closes the sentence. The readings come
from pypinyin with its tone-sandhi and neutral-tone rules (the corpus labels tones as spoken:
不要 is bu2 yao4, 你好 ni2 hao3), and the words in `anchor.speech.polyphones.POLYPHONES`
override it: the same table that corrects espeak-ng, so both voices read 银行 as yín háng.

The text is expected to have been through `normalize_for_speech(text, "zh")`, which turns
numbers and symbols into characters. The model has no English phonemes, so Latin letters are
spelled the way Mandarin speakers say them (APP: 诶 屁 屁, as "ei1 pi1 pi1"), which is how
viewers hear acronyms on Chinese broadcasts; English words (anything but capitals, or more
than `MAX_SPELLED` of them) are skipped. A sentence with nothing readable is the
caller's to give to another voice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypinyin import Style
from pypinyin.contrib.neutral_tone import NeutralToneWith5Mixin
from pypinyin.contrib.tone_sandhi import ToneSandhiMixin
from pypinyin.converter import DefaultConverter
from pypinyin.core import Pinyin

from anchor.speech.polyphones import POLYPHONES

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
MAX_SPELLED = 6
_PHRASE_BREAKS = "，、；：,;:。！？!?…—"
_RUNS = re.compile(f"{HAN.pattern}+|[A-Za-z]+|[{_PHRASE_BREAKS}]")
_LETTERS = {
    "a": "ei1", "b": "bi4", "c": "xi1", "d": "di4", "e": "yi4", "f": "ai2 fu5", "g": "ji4",
    "h": "ei1 qi1", "i": "ai4", "j": "jie4", "k": "kei4", "l": "ai2 le5", "m": "ai2 mu5",
    "n": "en1", "o": "ou1", "p": "pi1", "q": "qiu1", "r": "a4 er5", "s": "ai2 si5", "t": "ti4",
    "u": "you1", "v": "wei1", "w": "da2 bu5 liu5", "x": "ai2 ke4 si5", "y": "wai4", "z": "zei4",
}  # fmt: skip
_SENTENCE_EDGE = "sil"
_SYLLABLE_JOIN = "#0"
_PHRASE_BREAK = "#3"
_END = "eos"


def _unknown(chars: str) -> Any:  # a list, which pypinyin takes though its stubs say str
    """One empty reading per character pypinyin does not know, so the rest stay in place."""
    return [""] * len(chars)


class _Converter(ToneSandhiMixin, NeutralToneWith5Mixin, DefaultConverter):
    """pypinyin's reader with tone sandhi (一, 不, third tones) and neutral tones as 5."""


@dataclass(frozen=True, slots=True)
class Phonemes:
    """One sentence as the model reads it.

    `symbols[k]` is the k-th model symbol and `ids[k]` its id; `chars[k]` is the index in
    `text` of the character the symbol belongs to, or -1 for pauses and joins.
    """

    text: str
    symbols: tuple[str, ...]
    ids: tuple[int, ...]
    chars: tuple[int, ...]

    @property
    def syllables(self) -> int:
        return len({char for char in self.chars if char >= 0})


class Frontend:
    """Reads `baker_mapper.json` (symbol ids and the pinyin → initial/final table) once."""

    def __init__(self, symbol_ids: Mapping[str, int], pinyin_parts: Mapping[str, list[str]]):
        self._ids = dict(symbol_ids)
        self._parts = {syllable: (parts[0], parts[1]) for syllable, parts in pinyin_parts.items()}
        self._reader = Pinyin(_Converter())
        words = sorted(POLYPHONES, key=len, reverse=True)
        self._overrides = re.compile("|".join(map(re.escape, words))) if words else None

    @classmethod
    def from_mapper(cls, path: Path) -> Frontend:
        mapper = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(mapper["symbol_to_id"], mapper["pinyin_dict"])

    def phonemes(self, text: str) -> Phonemes:
        symbols: list[str] = [_SENTENCE_EDGE]
        chars: list[int] = [-1]
        for index, reading in self._readings(text):
            if reading is None:  # a phrase break
                if symbols[-1] == _SYLLABLE_JOIN:
                    symbols[-1] = _PHRASE_BREAK
                continue
            parts = self._split(reading)
            if parts is None:
                continue
            if symbols[-1] not in (_SENTENCE_EDGE, _PHRASE_BREAK, _SYLLABLE_JOIN):
                symbols.append(_SYLLABLE_JOIN)
                chars.append(-1)
            symbols.extend(parts)
            chars.extend((index, index))
            symbols.append(_SYLLABLE_JOIN)
            chars.append(-1)
        while symbols[-1] in (_SYLLABLE_JOIN, _PHRASE_BREAK):
            symbols.pop()
            chars.pop()
        if symbols[-1] != _SENTENCE_EDGE:
            symbols.append(_SENTENCE_EDGE)
            chars.append(-1)
        symbols.append(_END)
        chars.append(-1)
        return Phonemes(text, tuple(symbols), tuple(self._ids[s] for s in symbols), tuple(chars))

    def _readings(self, text: str) -> Iterator[tuple[int, str | None]]:
        """(character index, tone-numbered pinyin) per Chinese character; None at breaks."""
        for run in _RUNS.finditer(text):
            if run.group()[0] in _PHRASE_BREAKS:
                yield run.start(), None
            elif run.group().isascii():
                if len(run.group()) == 1 or (
                    run.group().isupper() and len(run.group()) <= MAX_SPELLED
                ):
                    for k, letter in enumerate(run.group().lower()):
                        for reading in _LETTERS[letter].split():
                            yield run.start() + k, reading
            else:
                yield from self._run_readings(run.group(), run.start())

    def _run_readings(self, run: str, offset: int) -> Iterator[tuple[int, str | None]]:
        position = 0
        pieces: list[tuple[int, str, list[str] | None]] = []
        if self._overrides is not None:
            for match in self._overrides.finditer(run):
                if match.start() > position:
                    pieces.append((position, run[position : match.start()], None))
                pieces.append((match.start(), match.group(), POLYPHONES[match.group()].split()))
                position = match.end()
        if position < len(run):
            pieces.append((position, run[position:], None))
        for start, piece, fixed in pieces:
            readings = fixed
            if readings is None or len(readings) != len(piece):
                found = self._reader.pinyin(piece, style=Style.TONE3, errors=_unknown)
                readings = [item[0] for item in found]
            for k, reading in enumerate(readings[: len(piece)]):
                yield offset + start + k, reading

    def _split(self, reading: str) -> tuple[str, str] | None:
        """("h", "ao3") for "hao3"; None for what the model has no phonemes for."""
        if not reading:
            return None
        reading = reading.lower().replace("ü", "v")
        tone = reading[-1] if reading[-1:] in "12345" else "5"
        syllable = reading.rstrip("12345")
        if syllable in ("n", "m", "ng"):  # 嗯, 呣: the corpus reads them as "en"
            syllable = "en"
        parts = self._parts.get(syllable)
        if parts is None and syllable.endswith("r") and syllable != "er":  # an 儿化 reading
            parts = self._parts.get(syllable[:-1])
        if parts is None or parts[1] + tone not in self._ids:
            return None
        return parts[0], parts[1] + tone
