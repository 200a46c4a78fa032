"""Finding listed words in a text, however they are spelled.

Two ways a word is found, both on the text's skeleton (see folding.py):

- *Literally*: its folded letters appear in order, whatever was put between them ("赌 博",
  "赌*博", "赌\u200d博", "ＦＵＣＫ"). A word that starts with a Latin letter or digit must start a
  Latin word of the text, so "this hit" does not contain "shit"; its end is free, so
  "fucking" still contains "fuck".
- *By sound*: a Han word of two or more syllables whose toneless pinyin appears as whole
  syllables: Han characters read one syllable each, Latin runs split into valid syllables
  ("堵博", "du bo", "dubo" for 赌博). One-syllable words are never matched by sound: too
  many innocent characters share a syllable.

A match of Han characters, by spelling or by sound, is dropped when it cuts through a common
word at its start or end ("特色情况" holds 色情, "代表自己" sounds like biao zi), and a match by
sound is dropped when the characters are themselves a common word (大妈 is not 大麻): see
lexicon.py. What remains is fixed by the operator: exemptions (``!word`` in a list) cancel
any match that lies inside an occurrence of the exempt word (读博, du bo, is not a common
word but sounds like 赌博), and a word listed as ``=word`` is never matched by sound.

Each text is folded and converted once; candidates are looked up by first character or
first syllable, so screening stays well under a millisecond for a 200-character question
against a list of hundreds of words.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from anchor.moderation.folding import (
    is_cjk,
    is_latin_or_digit,
    latin_letter,
    skeleton,
    skeleton_with_gaps,
)
from anchor.moderation.lexicon import Lexicon
from anchor.moderation.pinyin import PinyinTable
from anchor.moderation.wordlist import ListedWord

# What a position of the text offers to a sound match: a Han character's syllable (the next
# position follows it), the syllables a Latin run offers there (each with the position after
# it), or nothing (digits, other scripts, the middle of a syllable).
_Step = str | dict[str, int] | None


@dataclass(frozen=True, slots=True)
class Hit:
    """A listed word found in a text."""

    word: str  # as written in the list
    by_sound: bool


@dataclass(frozen=True, slots=True)
class _Spelling:
    letters: str  # the word's skeleton
    word: str
    starts_latin: bool  # must begin where a Latin word of the text begins


class WordMatcher:
    """The compiled form of a set of word lists. Immutable; safe to use from any thread."""

    def __init__(self, words: Iterable[ListedWord], table: PinyinTable, lexicon: Lexicon) -> None:
        self._table = table
        self._lexicon = lexicon
        self._spellings: dict[str, list[_Spelling]] = defaultdict(list)
        self._exempt: dict[str, list[_Spelling]] = defaultdict(list)
        self._sounds: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        self._count = 0
        for listed in words:
            letters = skeleton(listed.text)
            spelling = _Spelling(letters, listed.text, is_latin_or_digit(letters[0]))
            if listed.exempt:
                self._exempt[letters[0]].append(spelling)
                continue
            self._spellings[letters[0]].append(spelling)
            self._count += 1
            if listed.by_sound and len(letters) >= 2 and all(map(is_cjk, letters)):
                for syllables in table.word_readings(letters):
                    self._sounds[syllables[0]].append((syllables, listed.text))

    def __len__(self) -> int:
        """How many words (not exemptions) are listed."""
        return self._count

    def find(self, text: str) -> Hit | None:
        """The first listed word in ``text`` that no exemption covers, or None."""
        letters, gaps = skeleton_with_gaps(text)
        if not letters:
            return None
        starts = [
            gaps[i] or not is_latin_or_digit(letters[i - 1]) if i else True
            for i in range(len(letters))
        ]
        exempt = [
            (i, i + len(spelling.letters))
            for i, spelling in self._spelled_at(letters, starts, self._exempt)
        ]

        def counts(begin: int, end: int) -> bool:
            if any(low <= begin and end <= high for low, high in exempt):
                return False
            return not (self._cuts_innocent(letters, begin) or self._cuts_innocent(letters, end))

        for begin, spelling in self._spelled_at(letters, starts, self._spellings):
            if counts(begin, begin + len(spelling.letters)):
                return Hit(spelling.word, by_sound=False)
        steps = self._steps(letters, gaps)
        for begin, step in enumerate(steps):
            for syllables, word in self._sound_candidates(step):
                end = _walk(steps, begin, syllables)
                if end is None or letters[begin:end] in self._lexicon:
                    continue
                if counts(begin, end):
                    return Hit(word, by_sound=True)
        return None

    def _cuts_innocent(self, letters: str, at: int) -> bool:
        """Whether an innocent common word spans ``at``. A common word that holds a listed
        one is not innocent: "毒品" must not excuse 吸毒 in "吸毒品"."""
        return any(not self._holds_listed(word) for word in self._lexicon.words_across(letters, at))

    def _holds_listed(self, word: str) -> bool:
        return any(
            word.startswith(spelling.letters, i)
            for i, char in enumerate(word)
            for spelling in self._spellings.get(char, ())
        )

    @staticmethod
    def _spelled_at(
        letters: str, starts: list[bool], index: dict[str, list[_Spelling]]
    ) -> Iterable[tuple[int, _Spelling]]:
        for i, char in enumerate(letters):
            for spelling in index.get(char, ()):
                if spelling.starts_latin and not starts[i]:
                    continue
                if letters.startswith(spelling.letters, i):
                    yield i, spelling

    def _sound_candidates(self, step: _Step) -> Iterable[tuple[tuple[str, ...], str]]:
        if step is None:
            return ()
        if isinstance(step, str):
            return self._sounds.get(step, ())
        return [candidate for syllable in step for candidate in self._sounds.get(syllable, ())]

    def _steps(self, letters: str, gaps: tuple[bool, ...]) -> list[_Step]:
        steps: list[_Step] = [None] * len(letters)
        i = 0
        while i < len(letters):
            reading = self._table.reading(letters[i])
            if reading is not None:
                steps[i] = reading
                i += 1
            elif latin_letter(letters[i]) is None:
                i += 1
            else:
                end = i
                while end < len(letters) and latin_letter(letters[end]) is not None:
                    end += 1
                self._latin_steps(letters, gaps, i, end, steps)
                i = end
        return steps

    def _latin_steps(
        self, letters: str, gaps: tuple[bool, ...], begin: int, end: int, steps: list[_Step]
    ) -> None:
        """Syllables of a Latin run: split as one ("d u b o"), or else word by word."""
        plain = "".join(latin_letter(char) or "" for char in letters[begin:end])
        whole = self._table.split_points(plain)
        pieces: list[tuple[int, str, frozenset[int] | None]]
        if whole is not None:
            pieces = [(0, plain, whole)]
        else:
            cuts = [0, *(k for k in range(1, len(plain)) if gaps[begin + k]), len(plain)]
            pieces = [
                (low, plain[low:high], self._table.split_points(plain[low:high]))
                for low, high in zip(cuts, cuts[1:], strict=False)
            ]
        for low, piece, points in pieces:
            if points is None:
                continue
            offset = begin + low
            for point in points:
                if point < len(piece):
                    found = self._table.syllables_from(piece, point, points)
                    steps[offset + point] = {syl: offset + stop for syl, stop in found.items()}


def _walk(steps: list[_Step], begin: int, syllables: tuple[str, ...]) -> int | None:
    """Where a run of whole syllables starting at ``begin`` ends, or None if it is not there."""
    at = begin
    for syllable in syllables:
        if at >= len(steps):
            return None
        step = steps[at]
        if isinstance(step, str):
            if step != syllable:
                return None
            at += 1
        elif step:
            following = step.get(syllable)
            if following is None:
                return None
            at = following
        else:
            return None
    return at
