"""Chinese words and how often they are used, to tell a listed word from the same characters
or sounds inside innocent words.

Chinese has no spaces, so "特色情况" (特色 + 情况) contains 色情, and "代表自己" (代表 + 自己)
sounds like biao zi. Whether the characters of a match belong together is what a word
segmentation says: the most probable cut of the text into dictionary words, the method of
jieba (each word scored by its frequency, the best path through all cuts taken), run here on
a few characters around a match only. The counts are jieba's dictionary (kept: words of up
to six characters seen at least five times, and every single character); words that are
seen often enough to be everyday vocabulary count as *common*.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

_LONGEST = 6  # characters: longer words barely change a cut around a short listed word
_KEPT_COUNT = 5  # occurrences in jieba's corpus: rarer entries are mostly names
_COMMON_COUNT = 20  # occurrences: about 72,000 everyday words of two or more characters


class Lexicon:
    """Word counts, whether a word is common, and the most probable cut of a text into words.

    Immutable; safe to share between threads and between recompiled word lists.
    """

    def __init__(self, counts: Mapping[str, int]) -> None:
        self._counts = {w: c for w, c in counts.items() if 1 <= len(w) <= _LONGEST and c > 0}
        self._log_total = math.log(max(1, sum(self._counts.values())))

    @classmethod
    def common_chinese(cls) -> Lexicon:
        """jieba's dictionary (blocking: reads ~5 MB, about half a second)."""
        from importlib.resources import files

        counts: dict[str, int] = {}
        with (files("jieba") / "dict.txt").open(encoding="utf-8") as listing:
            for line in listing:
                word, count, _ = line.split(" ", 2)
                number = int(count)
                if len(word) == 1 or (len(word) <= _LONGEST and number >= _KEPT_COUNT):
                    counts[word] = number
        return cls(counts)

    def __contains__(self, word: object) -> bool:
        """A common word of two or more characters."""
        return (
            isinstance(word, str) and len(word) >= 2 and self._counts.get(word, 0) >= _COMMON_COUNT
        )

    def __len__(self) -> int:
        return len(self._counts)

    def count(self, word: str) -> int:
        """How often ``word`` was seen (0 for a word the dictionary does not have)."""
        return self._counts.get(word, 0)

    def segment(self, text: str, extra: Mapping[str, int]) -> list[tuple[int, int]]:
        """The most probable cut of ``text`` into words, as (start, end) spans.

        ``extra`` adds words (with counts) the dictionary lacks: the listed words themselves,
        so that a listed word competes with the innocent words around it on equal terms.
        """
        size = len(text)
        best: list[tuple[float, int]] = [(0.0, size)] * (size + 1)
        for start in range(size - 1, -1, -1):
            choice = (-math.inf, start + 1)
            for end in range(start + 1, min(size, start + _LONGEST) + 1):
                word = text[start:end]
                count = extra.get(word) or self._counts.get(word, 0)
                if not count and end > start + 1:
                    continue
                score = math.log(count or 1) - self._log_total + best[end][0]
                choice = max(choice, (score, end))
            best[start] = choice
        spans: list[tuple[int, int]] = []
        start = 0
        while start < size:
            end = best[start][1]
            spans.append((start, end))
            start = end
        return spans
