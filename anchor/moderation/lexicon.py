"""Common Chinese words, to tell a listed word from the same characters or sounds that
straddle two innocent words.

Chinese has no spaces, so "特色情况" (特色 + 情况) contains 色情, and "代表自己" (代表 + 自己)
sounds like biao zi. Such a match cuts through a common word at its start or its end; a real
use of a listed word ("去赌博", "堵博") does not. And a homophone that is itself a common word
(大妈 for 大麻, 病毒 for 冰毒) is the word, not an evasion. The words come from jieba's
dictionary, keeping those seen often enough to be everyday vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_SHORTEST, _LONGEST = 2, 4  # characters: the words that can straddle a short listed word
_COMMON_COUNT = 20  # occurrences in jieba's corpus: about 70,000 words


class Lexicon:
    """A set of words, and whether a position of a text falls inside one of them."""

    def __init__(self, words: Iterable[str]) -> None:
        self._words = frozenset(w for w in words if _SHORTEST <= len(w) <= _LONGEST)

    @classmethod
    def common_chinese(cls) -> Lexicon:
        """Everyday words from jieba's dictionary (blocking: reads ~5 MB, about half a second)."""
        from importlib.resources import files

        words: list[str] = []
        with (files("jieba") / "dict.txt").open(encoding="utf-8") as listing:
            for line in listing:
                word, count, _ = line.split(" ", 2)
                if _SHORTEST <= len(word) <= _LONGEST and int(count) >= _COMMON_COUNT:
                    words.append(word)
        return cls(words)

    def __contains__(self, word: object) -> bool:
        return word in self._words

    def __len__(self) -> int:
        return len(self._words)

    def words_across(self, text: str, at: int) -> Iterator[str]:
        """Words of this lexicon in ``text`` that span position ``at`` (the gap between
        ``text[at - 1]`` and ``text[at]``), so that a match starting or ending there would
        cut them."""
        for start in range(max(0, at - _LONGEST + 1), at):
            for end in range(at + 1, min(len(text), start + _LONGEST) + 1):
                if text[start:end] in self._words:
                    yield text[start:end]
