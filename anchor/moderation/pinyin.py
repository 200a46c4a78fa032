"""Toneless pinyin, so a sensitive word is caught when it is written with other characters
that sound the same ("堵博" for 赌博) or typed in Latin letters ("du bo", "DUBO").

Text is read one character at a time, each with its most common reading (the first one
pypinyin lists, which is also what an input method offers first). pypinyin's phrase-aware
``lazy_pinyin`` would be more exact, but it costs about a millisecond per 150 characters, too
slow for screening every question and every sentence before it airs. Words in the lists are
few and read once, so they get both forms: character by character (so a word written
literally always matches its own sound) and phrase-aware (so typed pinyin of the usual
pronunciation matches too).

Latin letters are pinyin only if the whole run splits into valid syllables; English words
mostly do not ("hello", "job"), which keeps ordinary English text out of homophone matching.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

_VOWELS = frozenset("aeiouv")
_LONGEST_SYLLABLE = 6  # zhuang, chuang, shuang


def _toneless(reading: str) -> str:
    """pypinyin's NORMAL style ("lǜ" → "lv", "dǔ" → "du") without a pypinyin call per reading."""
    decomposed = unicodedata.normalize("NFD", reading)
    if "\u0308" in decomposed:
        decomposed = decomposed.replace("u", "v")
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _blank_each(chars: str) -> list[str]:
    return [""] * len(chars)


class PinyinTable:
    """Every Han character's toneless reading and the set of valid pinyin syllables.

    Building it imports pypinyin's dictionary (about 0.3 s): construct it off the event loop.
    It is immutable afterwards and safe to share between threads.
    """

    def __init__(self) -> None:
        from pypinyin.pinyin_dict import pinyin_dict

        readings: dict[str, str] = {}
        syllables: set[str] = set()
        for codepoint, listed in pinyin_dict.items():
            toneless = [_toneless(reading) for reading in listed.split(",")]
            readings[chr(codepoint)] = toneless[0]
            # Vowel-less interjections (m, n, ng, hm) would let any consonant cluster pass
            # as pinyin, so they are not syllables a Latin run may be split into.
            syllables.update(s for s in toneless if _VOWELS.intersection(s))
        self._readings: Mapping[str, str] = readings
        self.syllables: frozenset[str] = frozenset(syllables)

    def reading(self, char: str) -> str | None:
        """The most common toneless reading of a Han character, or None for anything else."""
        return self._readings.get(char)

    def readings(self, text: str) -> list[str | None]:
        """The reading of each character of ``text`` (None where it has none)."""
        return list(map(self._readings.get, text))

    def word_readings(self, word: str) -> set[tuple[str, ...]]:
        """The syllable sequences a Han word is matched by (empty if a character has none)."""
        by_char = [reading for char in word if (reading := self._readings.get(char)) is not None]
        if len(by_char) != len(word):
            return set()
        from pypinyin import Style, lazy_pinyin

        # pypinyin's stub says ``errors`` returns one str, but a list is supported at runtime
        # and keeps one (blank) item per unknown character, so lengths stay comparable.
        phrase = lazy_pinyin(word, style=Style.NORMAL, errors=_blank_each)  # type: ignore[arg-type]
        forms = {tuple(by_char)}
        if len(phrase) == len(word) and all(phrase):
            forms.add(tuple(phrase))
        return forms

    def split_points(self, letters: str) -> frozenset[int] | None:
        """Where ``letters`` can be cut into syllables, or None if it cannot be cut fully.

        A position counts when some complete split of the whole run passes through it:
        "xian" may be xi|an or xian, so 0, 2 and 4 all count.
        """
        size = len(letters)
        reach_forward = [False] * (size + 1)
        reach_forward[0] = True
        for start in range(size):
            if reach_forward[start]:
                for end in self._syllable_ends(letters, start):
                    reach_forward[end] = True
        if not reach_forward[size]:
            return None
        reach_back = [False] * (size + 1)
        reach_back[size] = True
        for start in range(size - 1, -1, -1):
            reach_back[start] = any(reach_back[end] for end in self._syllable_ends(letters, start))
        return frozenset(i for i in range(size + 1) if reach_forward[i] and reach_back[i])

    def syllables_from(self, letters: str, start: int, points: Iterable[int]) -> dict[str, int]:
        """The syllables that start at ``start`` and end on a split point, with their ends."""
        allowed = set(points)
        return {
            letters[start:end]: end for end in self._syllable_ends(letters, start) if end in allowed
        }

    def _syllable_ends(self, letters: str, start: int) -> Iterable[int]:
        last = min(len(letters), start + _LONGEST_SYLLABLE)
        return (end for end in range(start + 1, last + 1) if letters[start:end] in self.syllables)
