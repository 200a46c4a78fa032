"""Text as the voice needs it: cut into sentences, language chosen, written to be read aloud.

The sentence is the unit of the show: interruptions land between sentences and captions
change per sentence, so sentences must be short enough to swap quickly yet never cut inside
a number or an abbreviation. `normalize_for_speech` writes a sentence the way it is said,
for any voice: espeak-ng skips full-width digits, reads a hotline as "twelve thousand...",
"#" in English and 银行 as yín xíng, and a neural front-end that reads only characters
drops Arabic digits altogether.
"""

from __future__ import annotations

import re
import unicodedata

from anchor.speech.polyphones import respell_for_espeak
from anchor.speech.zh_normalise import normalise_chinese

CJK_SENTENCE_LIMIT = 60
LATIN_SENTENCE_LIMIT = 200

_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002ebef\U00030000-\U0003134f"
)
_CJK_CHAR = re.compile(f"[{_CJK}]")

_STOPS = "。！？；…!?;"
_CLOSERS = "”’」』）)】》\"'"
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "vs",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
        "e.g",
        "i.e",
        "cf",
        "approx",
        "dept",
        "fig",
    ]
)
_NUMBER_ABBREVIATIONS = frozenset({"no", "art", "vol"})
_WORD_BEFORE_PERIOD = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")

_SOFT_BREAK = re.compile(r"(?<=[，、：])|(?<=[,:])(?!\d)")
_SPACE_BREAK = re.compile(r"(?<=\s)(?=\S)")


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, each keeping its closing punctuation, long ones cut at commas.

    A line break also ends a sentence, because schedule points written as lists rarely
    carry punctuation at the end of each line. Pieces with nothing to say (a stray "。")
    are dropped, since they would only air as silence and an empty caption.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        for sentence in _split_line(line):
            limit = CJK_SENTENCE_LIMIT if _CJK_CHAR.search(sentence) else LATIN_SENTENCE_LIMIT
            sentences.extend(_cut_long(sentence, limit))
    return sentences


def detect_language(sentence: str) -> str:
    """ "zh" when the sentence has any CJK ideograph (English words inside Chinese are common,
    the reverse is not), otherwise "en"."""
    return "zh" if _CJK_CHAR.search(sentence) else "en"


def _split_line(line: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    i = 0
    while i < len(line):
        char = line[i]
        if char in _STOPS or (char == "." and _period_ends_sentence(line, start, i)):
            i = _skip_run(line, i + 1, _STOPS + ".")
            i = _skip_run(line, i, _CLOSERS)
            pieces.append(line[start:i])
            start = i
        else:
            i += 1
    pieces.append(line[start:])
    return [piece.strip() for piece in pieces if any(char.isalnum() for char in piece)]


def _skip_run(line: str, i: int, chars: str) -> int:
    while i < len(line) and line[i] in chars:
        i += 1
    return i


def _period_ends_sentence(line: str, start: int, i: int) -> bool:
    """Whether the "." at `i` closes a sentence rather than sitting in 3.5, e.g. or "1."."""
    after = _skip_run(line, i + 1, ".")
    if after < len(line):
        following = line[after]
        if not (following.isspace() or following in _CLOSERS or _CJK_CHAR.match(following)):
            return False
    if after > i + 1:
        return True
    before = line[start:i].strip()
    if before.isdigit():
        return False
    word = _WORD_BEFORE_PERIOD.search(before)
    if word is None:
        return True
    token = word.group(1)
    if token.lower() in _NUMBER_ABBREVIATIONS:
        return not line[after:].lstrip()[:1].isdigit()
    return not (token.lower() in _ABBREVIATIONS or _INITIALS.fullmatch(token))


def _cut_long(sentence: str, limit: int) -> list[str]:
    """Cut an over-long sentence at commas, then spaces, then anywhere, packing to `limit`."""
    if len(sentence) <= limit:
        return [sentence]
    pieces: list[str] = []
    for clause in _SOFT_BREAK.split(sentence):
        for phrase in _SPACE_BREAK.split(clause) if len(clause) > limit else [clause]:
            pieces.extend(phrase[k : k + limit] for k in range(0, len(phrase), limit))
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + len(piece) > limit:
            chunks.append(current)
            current = ""
        current += piece
    chunks.append(current)
    return [chunk.strip() for chunk in chunks if chunk.strip()]


_FULL_WIDTH = {
    **{code: code - 0xFEE0 for code in range(0xFF10, 0xFF1A)},
    **{code: code - 0xFEE0 for code in range(0xFF21, 0xFF3B)},
    **{code: code - 0xFEE0 for code in range(0xFF41, 0xFF5B)},
    0x3000: 0x20,
}
_DROPPED_CATEGORIES = frozenset({"So", "Sk", "Cf", "Co", "Cs"})
_READ_ALOUD_SYMBOLS = "#*_~\\|^`"
_KEPT_SYMBOLS = "℃°"
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")

_ZH_CELSIUS = re.compile(r"℃|°\s*C")
_ZH_DEGREE = re.compile(r"(?<=\d)\s*°")
_ZH_PER_UNIT = re.compile(r"([元块])\s*/\s*(?=[天月年人次时周])")


def normalize_for_speech(text: str, language: str, *, respell_polyphones: bool = True) -> str:
    """`text` rewritten so a voice reads it as a listener expects.

    Both languages: full-width letters and digits become ASCII; emoji, pictographs and
    symbols that would be read out by name are dropped. Chinese is also written as it is
    said (`anchor.speech.zh_normalise`): numbers, amounts, dates, times, percentages,
    ranges and article numbers in characters (12000元 -> 一万两千元, 9:00-17:30 ->
    九点到十七点三十分, 第47条 -> 第四十七条), phone numbers and codes digit by digit
    (12351 -> 幺二三五幺), 35℃ -> 三十五摄氏度, 元/月 -> 元每月, acronyms spelled (OBS -> O B S).

    `respell_polyphones` swaps the characters of words espeak-ng misreads for homophones
    it reads right (银行 -> 银杭, `anchor.speech.polyphones`): right for any voice's ears,
    but a voice whose front-end knows words (and can take `POLYPHONES` as an override)
    should ask for the words as written. Applying it twice gives the same text as once.
    """
    spoken = _VARIATION_SELECTORS.sub("", text.translate(_FULL_WIDTH))
    spoken = "".join(
        char
        for char in spoken
        if unicodedata.category(char) not in _DROPPED_CATEGORIES or char in _KEPT_SYMBOLS
    )
    if language.lower().startswith("zh"):
        spoken = _normalize_chinese(spoken)
        if respell_polyphones:
            spoken = respell_for_espeak(spoken)
    else:
        spoken = spoken.replace("℃", "°C")
    spoken = "".join(" " if char in _READ_ALOUD_SYMBOLS else char for char in spoken)
    return re.sub(r"[ \t]{2,}", " ", spoken).strip()


def _normalize_chinese(text: str) -> str:
    text = _ZH_CELSIUS.sub("摄氏度", text)
    text = _ZH_DEGREE.sub("度", text)
    text = _ZH_PER_UNIT.sub(r"\1每", text)
    text = normalise_chinese(text)
    return text.replace("@", " ").replace("&", "和").replace("/", " ")
