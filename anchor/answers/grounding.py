"""Keeping a model's answer to what the knowledge base says, sentence by sentence.

The prompt tells the model to answer only from the entries it is given, but a small local
model still drifts: it chats about something else, or "helpfully" adds a deadline, an
amount or a phone number of its own. On a union's channel a wrong number is the worst
possible answer (a worker misses a deadline), so every sentence the model writes is checked
before it is spoken (after personal data in it is masked, as it would air), against the
grounding: the viewer's question and the entries the model was given.

- **Numbers.** Every number in the sentence (digits, or Chinese numerals before a unit:
  三十天, 两个月) must appear in the grounding. One that does not is invented.
- **Topic.** Most of the sentence's Chinese character pairs and Latin words must occur in
  the grounding. A sentence about something else shares almost none; a paraphrase of an
  entry shares most. Short sentences (a greeting, "别担心") are let through.

A sentence that fails is not aired and the model is stopped (what comes after a drifting
sentence is not trusted either); the answerer then ends with what was already said, or, if
nothing was, speaks the knowledge-base answer instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from anchor.answers.knowledge import Entry

MIN_SHARED = 0.3  # share of a sentence's terms found in the grounding for it to be on topic
MIN_TERMS = 6  # sentences with fewer terms (about 7 characters) are too short to judge

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_LATIN_WORD = re.compile(r"[a-z]{3,}")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_CHINESE_NUMBER = re.compile(
    r"[零〇一二两三四五六七八九十百千万]+(?=[个天日周月年岁元块倍次小分%％])"
)
_DIGIT_VALUE = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_DIGIT_VALUE |= {"六": 6, "七": 7, "八": 8, "九": 9}
_UNIT_VALUE = {"十": 10, "百": 100, "千": 1000}


class GroundingGuard:
    """Judges the sentences of one model answer against its question and entries."""

    def __init__(self, question: str, entries: Iterable[Entry]) -> None:
        texts = [question]
        for entry in entries:
            texts.extend((entry.question, *entry.alternates, entry.answer))
        grounding = " ".join(texts)
        self._numbers = numbers_in(grounding)
        self._terms = terms_in(grounding)

    def problem(self, sentence: str) -> str | None:
        """Why ``sentence`` must not be aired, or None when it is grounded."""
        invented = numbers_in(sentence) - self._numbers
        if invented:
            return f"a number not in the knowledge base ({', '.join(sorted(invented))})"
        terms = terms_in(sentence)
        if len(terms) >= MIN_TERMS:
            shared = len(terms & self._terms) / len(terms)
            if shared < MIN_SHARED:
                return f"off topic (shares {shared:.0%} of its words with the entries)"
        return None


def terms_in(text: str) -> set[str]:
    """Chinese character pairs and Latin words: what two texts on one topic share."""
    text = unicodedata.normalize("NFKC", text).lower()
    terms: set[str] = set(_LATIN_WORD.findall(text))
    for run in _CJK_RUN.findall(text):
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    return terms


def numbers_in(text: str) -> set[str]:
    """The numbers ``text`` states, as canonical digit strings ("三十天" → "30")."""
    text = unicodedata.normalize("NFKC", text)
    found = {_canonical(match) for match in _DIGITS.findall(text)}
    for match in _CHINESE_NUMBER.findall(text):
        if match == "一":  # "一个问题", "一次": an article far more often than an amount
            continue
        value = _chinese_value(match)
        if value is not None:
            found.add(str(value))
    return found


def _canonical(number: str) -> str:
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number.lstrip("0") or "0"


def _chinese_value(numeral: str) -> int | None:
    """Value of a Chinese numeral up to the ten thousands (三十 30, 一百二十 120, 两万 20000)."""
    total, section, digit = 0, 0, None
    for char in numeral:
        if char in _DIGIT_VALUE:
            digit = _DIGIT_VALUE[char]
        elif char in _UNIT_VALUE:
            section += (1 if digit is None else digit) * _UNIT_VALUE[char]
            digit = None
        elif char == "万":
            total = (total + section + (digit or 0)) * 10000
            section, digit = 0, None
        else:
            return None
    return total + section + (digit or 0)
