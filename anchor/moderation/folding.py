"""Folding text to what it says, not how it is typed.

Evasion and paraphrase both hide behind presentation: full-width letters, capitals, spaces,
punctuation, emoji and invisible characters between the characters of a word, accents piled
on Latin letters, look-alike letters from other scripts (Cyrillic "р" for "p") and traditional
characters for simplified ones. Matching and duplicate detection therefore work on a
*skeleton*: compatibility-folded (full-width → ASCII, circled and styled letters → plain),
stripped of combining marks, look-alike letters mapped to Latin, case-folded, and reduced to
letters and digits. What was dropped between two kept characters is remembered as a gap,
because a gap is where a Latin word may start (so "this hit" is not read as "shit", but
"s h i t" is).

Dropped as nothing: every format character (Cf: zero-width space and joiners, bidi controls,
soft hyphen, tag characters), every combining or enclosing mark (Mn, Me: variation selectors,
"zalgo" stacks), every separator (Zs, Zl, Zp) and the Hangul fillers, which Unicode counts as
letters (Lo) although they print as blank space.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

# Letters and digits of any script; "_" is a word character for `re` but not content.
_KEPT_RUN = re.compile(r"[^\W_]+")
_CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CJK = re.compile(f"[{_CJK_CHARS}]")
CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
# What ends a clause (after folding, full-width "，" is ","): see `read_skeleton`. The
# enumeration comma "、" pauses between the items of a list inside one clause.
_PAUSE = re.compile(r"[,.!?;:。、\n]")
_CLAUSE_END = re.compile(r"[,.!?;:。\n]")
_CAPITALIZED = re.compile(r"[A-Z][a-z]+")
# Combining marks that decorate Latin, Greek and Cyrillic letters (accents, zalgo stacks).
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Letters that print as blank space: Hangul choseong/jungseong fillers, compatibility filler,
# half-width filler.
_BLANK_LETTERS = "\u115f\u1160\u3164\uffa0"

# Letters of other scripts that look like a Latin letter, by shape; both cases, because an
# upper-case Cyrillic "Н" looks like "H" while its lower case "н" folds to something else.
_LOOKALIKES_BY_LATIN = {
    "a": "АаΑαɑᴀ",
    "b": "ВвЬьΒβʙ",
    "c": "СсϹϲᴄ",
    "d": "ԁᴅ",
    "e": "ЕеЁёΕεᴇ",
    "f": "ꜰ",
    "g": "ɡɢ",
    "h": "НнҺһΗʜհ",
    "i": "ІіЇїΙιıɩɪ",
    "j": "Јјϳȷᴊ",
    "k": "КкΚκᴋ",
    "l": "Ӏӏʟ",
    "m": "МмΜᴍ",
    "n": "Νηпɴ",
    "o": "ОоΟοᴏօ",
    "p": "РрΡρᴘ",
    "q": "Ԛԛ",
    "r": "гʀ",
    "s": "Ѕѕꜱ",
    "t": "ТтΤτᴛ",
    "u": "υᴜս",
    "v": "νᴠ",
    "w": "ԜԝωᴡШ",
    "x": "ХхΧχ",
    "y": "УуΥγʏ",
    "z": "Ζᴢ",
}


class CharMap:
    """A character-for-character replacement table. Most texts hold none of its characters,
    so a set test (fast) decides whether the translation (slower) runs."""

    def __init__(self, table: Mapping[int, str]) -> None:
        self._table = dict(table)
        self._chars = frozenset(map(chr, self._table))

    def __len__(self) -> int:
        return len(self._table)

    def apply(self, text: str) -> str:
        if self._chars.isdisjoint(text):
            return text
        return text.translate(self._table)


_LOOKALIKE_TABLE = {
    ord(char): latin for latin, chars in _LOOKALIKES_BY_LATIN.items() for char in chars
}
_LOOKALIKE_TABLE.update({ord(char): " " for char in _BLANK_LETTERS})
_LOOKALIKES = CharMap(_LOOKALIKE_TABLE)
# The look-alikes that compatibility decomposition would turn into letters that no longer
# look Latin (lunate sigma "Ϲ" → "Σ"): mapped before normalizing.
_LOOKALIKES_BEFORE = CharMap(
    {
        code: latin
        for code, latin in _LOOKALIKE_TABLE.items()
        if unicodedata.normalize("NFKD", chr(code)) != chr(code)
    }
)


def fold(text: str, simplified: CharMap | None = None) -> str:
    """Compatibility-fold, strip accents, map look-alike letters, case-fold: ＡＢＣ, ÁBC, АВС
    (Cyrillic) and abc become the same letters. With ``simplified`` (see
    `simplified_chinese`), traditional characters become simplified ones too."""
    return _fold_but_case(text, simplified).casefold()


def _fold_but_case(text: str, simplified: CharMap | None) -> str:
    decomposed = unicodedata.normalize("NFKD", _LOOKALIKES_BEFORE.apply(text))
    folded = _LOOKALIKES.apply(unicodedata.normalize("NFC", _MARKS.sub("", decomposed)))
    return folded if simplified is None else simplified.apply(folded)


def skeleton(text: str, simplified: CharMap | None = None) -> str:
    """The folded letters and digits of ``text``, everything between them dropped."""
    return "".join(_KEPT_RUN.findall(fold(text, simplified)))


def source_span(
    text: str, first: int, last: int, simplified: CharMap | None = None
) -> tuple[int, int]:
    """The slice of ``text`` (start, end) that skeleton positions ``first``..``last`` were
    folded from, with whatever was dropped between them ("傻 逼", "傻*逼") and the marks and
    format characters right after the last one.

    Folding does not keep lengths (ﬁ → fi, ß → ss), so a position is traced by the shortest
    prefix of ``text`` whose skeleton reaches it: a binary search of a few dozen foldings,
    cheap for the few spans a screening needs.
    """
    prefixes = range(len(text) + 1)

    def kept(end: int) -> int:
        return len(skeleton(text[:end], simplified))

    start = bisect.bisect_right(prefixes, first, key=kept) - 1
    end = bisect.bisect_right(prefixes, last, key=kept)
    while end < len(text) and unicodedata.category(text[end]) in ("Mn", "Me", "Cf"):
        end += 1
    return max(start, 0), end


@dataclass(frozen=True, slots=True)
class Skeleton:
    """A text's skeleton, and what was dropped or folded that still tells something."""

    letters: str
    gaps: tuple[bool, ...]  # for each character: whether something was dropped before it
    # Positions right after a pause: a dropped stretch with a comma, full stop, colon,
    # semicolon, question or exclamation mark or line break, where a clause ends, or with an
    # enumeration comma "、".
    pauses: frozenset[int]
    # Positions where a capitalized Latin word starts ("Wang Du"): how names are written.
    capitalized: frozenset[int]
    # The pauses that only an enumeration comma makes: the clause goes on ("废物、王八蛋").
    enumerations: frozenset[int] = frozenset()


def read_skeleton(text: str, simplified: CharMap | None = None) -> Skeleton:
    """The skeleton of ``text`` with its gaps, pauses and capitalized words."""
    parts: list[str] = []
    gaps: list[bool] = []
    pauses: set[int] = set()
    enumerations: set[int] = set()
    capitalized: set[int] = set()
    folded = _fold_but_case(text, simplified)
    dropped_from = 0
    for run in _KEPT_RUN.finditer(folded):
        if _PAUSE.search(folded, dropped_from, run.start()):
            pauses.add(len(gaps))
            if not _CLAUSE_END.search(folded, dropped_from, run.start()):
                enumerations.add(len(gaps))
        dropped_from = run.end()
        chars = run.group()
        if _CAPITALIZED.fullmatch(chars):
            capitalized.add(len(gaps))
        chars = chars.casefold()
        parts.append(chars)
        gaps.append(True)
        gaps.extend([False] * (len(chars) - 1))
    return Skeleton(
        "".join(parts),
        tuple(gaps),
        frozenset(pauses),
        frozenset(capitalized),
        frozenset(enumerations),
    )


def simplified_chinese() -> CharMap:
    """Traditional → simplified, character by character, from OpenCC's ``t2s`` tables.

    Character by character keeps every position of a text where it was (the matcher maps hits
    back to positions), which phrase conversion would not promise; for spotting a listed word
    written in traditional characters the character table is what matters. Blocking (about
    30 ms): build it once, off the event loop, and share it.
    """
    try:
        import opencc
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("traditional-character folding needs OpenCC: pip install opencc") from exc
    converter = opencc.OpenCC("t2s.json")
    ranges = ((0x3400, 0x4DC0), (0x4E00, 0xA000))  # beyond them: 351 rare ones, skipped
    chars = [chr(code) for low, high in ranges for code in range(low, high)]
    converted = converter.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # pragma: no cover - OpenCC keeps line breaks
        return CharMap({})
    return CharMap(
        {
            ord(char): simple
            for char, simple in zip(chars, converted, strict=True)
            if simple != char and len(simple) == 1
        }
    )


def is_cjk(char: str) -> bool:
    """A Han character (the ones that have a pinyin reading)."""
    return _CJK.match(char) is not None


def latin_letter(char: str) -> str | None:
    """The plain a–z letter behind ``char`` ("ǔ" → "u", "ü" → "v" as pinyin types it), or None."""
    if "a" <= char <= "z":
        return char
    if not "\u00c0" <= char <= "\u024f":  # outside the accented Latin blocks
        return None
    if char == "ü":
        return "v"
    base = unicodedata.normalize("NFD", char)[0]
    return base if "a" <= base <= "z" else None


def is_latin_or_digit(char: str) -> bool:
    """Part of a Latin-script word: an ASCII digit or a (possibly accented) Latin letter."""
    return "0" <= char <= "9" or latin_letter(char) is not None
