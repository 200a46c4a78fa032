"""Folding text to what it says, not how it is typed.

Evasion and paraphrase both hide behind presentation: full-width letters, capitals, spaces,
punctuation, emoji and zero-width characters between the characters of a word. Matching and
duplicate detection therefore work on a *skeleton*: NFKC-folded (full-width → ASCII, circled
and styled letters → plain), case-folded, and reduced to letters and digits. What was dropped
between two kept characters is remembered as a gap, because a gap is where a Latin word may
start (so "this hit" is not read as "shit", but "s h i t" is).
"""

from __future__ import annotations

import re
import unicodedata

# Letters and digits of any script; "_" is a word character for `re` but not content.
_KEPT_RUN = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def fold(text: str) -> str:
    """NFKC then case-fold: ＡＢＣ, ABC and abc become the same letters."""
    return unicodedata.normalize("NFKC", text).casefold()


def skeleton(text: str) -> str:
    """The folded letters and digits of ``text``, everything between them dropped."""
    return "".join(_KEPT_RUN.findall(fold(text)))


def skeleton_with_gaps(text: str) -> tuple[str, tuple[bool, ...]]:
    """The skeleton, and for each of its characters whether something was dropped before it."""
    parts: list[str] = []
    gaps: list[bool] = []
    for run in _KEPT_RUN.finditer(fold(text)):
        chars = run.group()
        parts.append(chars)
        gaps.append(True)
        gaps.extend([False] * (len(chars) - 1))
    return "".join(parts), tuple(gaps)


def is_cjk(char: str) -> bool:
    """A Han character (the ones that have a pinyin reading)."""
    return _CJK.match(char) is not None


def latin_letter(char: str) -> str | None:
    """The plain a–z letter behind ``char`` ("ǔ" → "u", "ü" → "v" as pinyin types it), or None."""
    if "a" <= char <= "z":
        return char
    if char == "ü":
        return "v"
    base = unicodedata.normalize("NFD", char)[0]
    return base if "a" <= base <= "z" else None


def is_latin_or_digit(char: str) -> bool:
    """Part of a Latin-script word: an ASCII digit or a (possibly accented) Latin letter."""
    return "0" <= char <= "9" or latin_letter(char) is not None
