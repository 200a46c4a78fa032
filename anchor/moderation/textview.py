"""One text as the matcher reads it, built once per screening.

- The *skeleton*: folded letters and digits, with the gaps where something was dropped
  (folding.py).
- *Han runs*: the Han characters that belong together. Characters next to each other in the
  skeleton belong together, and so do two characters with a short insertion of other letters
  between them: at most three digits, kana, Latin or other letters ("赌1博", "赌の博",
  "赌a博"), which no sentence needs between two characters of one word. A number followed by
  a counting word is not an insertion ("工资3千", "赌2场"): it is what it says.
- *Capitalized words*: "Wang Du" is how a name is written in Latin letters; typed pinyin
  that is all capitalized words is read as a name, not as an evasion (网赌, wang du).
- *Pauses*: where punctuation ended a clause ("公司被收购，银行卡……"); a Han run goes on across
  them (so "赌，博" is still one word), but a match that a pause cuts into words is not one.
  The *clause ends* are the pauses but those of an enumeration comma ("废物、王八蛋"), which
  separates items inside one clause.
- *Steps*: what each position offers to a match by sound: a Han character's syllable (to the
  next character, or past an insertion), or the pinyin syllables a Latin run spells there.
  A run of Latin letters is pinyin only if it splits into valid syllables as a whole, or
  word by word ("du bo", "dubo"); a single digit 1–5 after a syllable is its tone and ends
  it ("du3bo2", "du4 bo2").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from anchor.moderation.folding import CJK_RUN, CharMap, is_latin_or_digit, read_skeleton
from anchor.moderation.pinyin import PinyinTable

_LONGEST_INSERTION = 3  # kept characters between two Han characters that still belong together
# A run of Latin letters, with single tone digits 1–5 after a letter ("du3bo2"). Accents
# are folded away before this is read, so a–z are the letters pinyin is typed with.
_LATIN_RUN = re.compile(r"[a-z](?:[a-z]|[1-5](?![0-9]))*")
# Characters that follow a number as its unit or counting word: a digit before one of them is
# a quantity, not an insertion.
_COUNTING = frozenset(
    "个只次场片张块元角分秒岁位名条件份本粒颗包瓶杯斤两克米天日月年周号点时层楼倍级"
    "十百千万亿把盘局注手"
)

# (syllable, position after it, the Han character read, or None for typed pinyin)
Step = tuple[str, int, str | None]


@dataclass(frozen=True, slots=True)
class HanRun:
    """Han characters that belong together, and where each stands in the skeleton."""

    text: str
    positions: tuple[int, ...]


class TextView:
    """The skeleton of one text, its Han runs and what each position offers to a match by
    sound. Built once per screening; what only some texts need is worked out on demand."""

    def __init__(self, text: str, simplified: CharMap, table: PinyinTable) -> None:
        skeleton = read_skeleton(text, simplified)
        letters = self.letters = skeleton.letters
        self.pauses = skeleton.pauses
        self.enumerations = skeleton.enumerations
        self.clause_ends = skeleton.pauses - skeleton.enumerations
        self.capitalized = skeleton.capitalized
        self._gaps = skeleton.gaps
        self.runs, self.joins = _han_runs(letters)  # joins: across insertions only
        self.readings = table.readings(letters)
        self.latin: dict[int, list[Step]] = {}  # typed pinyin: syllables starting here
        for run in _LATIN_RUN.finditer(letters):
            self._latin_steps(table, run.start(), run.end())

    @property
    def has_pinyin(self) -> bool:
        """Whether some Latin letters of the text read as pinyin."""
        return bool(self.latin)

    @cached_property
    def run_at(self) -> dict[int, tuple[int, int]]:
        """Skeleton position of a Han character → (its run, its offset in the run)."""
        return {
            position: (index, offset)
            for index, run in enumerate(self.runs)
            for offset, position in enumerate(run.positions)
        }

    @cached_property
    def starts(self) -> list[bool]:
        """For each position, whether a word written in Latin letters or digits may start
        there: at the start, after a gap, or after a character that is neither."""
        letters, gaps = self.letters, self._gaps
        return [
            gaps[i] or not is_latin_or_digit(letters[i - 1]) if i else True
            for i in range(len(letters))
        ]

    def word_start(self, at: int) -> int:
        """Where the word of letters and digits holding position ``at`` starts."""
        while at and not self._gaps[at]:
            at -= 1
        return at

    def options(self, at: int) -> list[Step]:
        """What position ``at`` offers to a match by sound."""
        reading = self.readings[at]
        if reading is None:
            return self.latin.get(at, [])
        step = (reading, at + 1, self.letters[at])
        joined = self.joins.get(at)
        return [step] if joined is None else [step, (reading, joined, step[2])]

    def _latin_steps(self, table: PinyinTable, begin: int, end: int) -> None:
        """Syllables of a Latin run (tone digits included)."""
        plain: list[str] = []
        where: list[int] = []  # skeleton position of each plain letter
        tone_cuts = [0]
        for k in range(begin, end):
            char = self.letters[k]
            if char.isdigit():
                tone_cuts.append(len(plain))
            else:
                plain.append(char)
                where.append(k)
        word = "".join(plain)
        tone_cuts.append(len(word))

        def after(point: int) -> int:
            return where[point] if point < len(where) else end

        for low, high in zip(tone_cuts, tone_cuts[1:], strict=False):
            for start, piece, points in _pieces(word, low, high, where, self._gaps, table):
                for point in points:
                    if point >= len(piece):
                        continue
                    for syllable, stop in table.syllables_from(piece, point, points).items():
                        step = (syllable, after(start + stop), None)
                        self.latin.setdefault(where[start + point], []).append(step)


def _pieces(
    word: str,
    low: int,
    high: int,
    where: list[int],
    gaps: tuple[bool, ...],
    table: PinyinTable,
) -> list[tuple[int, str, frozenset[int]]]:
    """``word[low:high]`` split into syllables as one, or else word by word (at the gaps)."""
    whole = table.split_points(word[low:high])
    if whole is not None:
        return [(low, word[low:high], whole)]
    cuts = [low, *(k for k in range(low + 1, high) if gaps[where[k]]), high]
    pieces = []
    for start, stop in zip(cuts, cuts[1:], strict=False):
        points = table.split_points(word[start:stop])
        if points is not None:
            pieces.append((start, word[start:stop], points))
    return pieces


def _han_runs(letters: str) -> tuple[list[HanRun], dict[int, int]]:
    """The Han runs of a skeleton, and the joins across insertions: the position of the
    last Han character before one → the position of the first after it."""
    runs: list[HanRun] = []
    joins: dict[int, int] = {}
    texts: list[str] = []
    positions: list[int] = []
    for block in CJK_RUN.finditer(letters):
        start, end = block.span()
        if positions and not _belong_together(letters, positions[-1], start):
            runs.append(HanRun("".join(texts), tuple(positions)))
            texts, positions = [], []
        if positions:
            joins[positions[-1]] = start
        texts.append(block.group())
        positions.extend(range(start, end))
    if positions:
        runs.append(HanRun("".join(texts), tuple(positions)))
    return runs, joins


def _belong_together(letters: str, here: int, there: int) -> bool:
    inserted = letters[here + 1 : there]
    if len(inserted) > _LONGEST_INSERTION:
        return False
    return not (inserted.isdigit() and letters[there] in _COUNTING)
