"""Finding personal numbers however they are spelled out.

A number is read as *groups* of digits (Arabic in any width or script, or Chinese numerals)
with *joiners* between them: a little space, dashes, dots, slashes, underscores, brackets,
emoji or other symbols, as viewers type "138.0013.8000", "(020)12345678", "138😀0013😀8000" or
"一三八 0013 8000". A change of script starts a new group, so "13800138000一直打不通" still
shows its eleven digits. A personal number is made of *whole* groups: a number inside a longer
run of digits is not picked out, so 12351, amounts, dates, years and codes stay readable.

Letters and Chinese characters never join. The punctuation of lists and times (、，,；;：:)
joins weakly: only a mobile grouped exactly 3-4-4 ("138，0013，8000") is read across it, so
"15、30、60、90、120天" stays a list and "8:30" a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from anchor.moderation.personal.cues import cue_before
from anchor.moderation.personal.kinds import LONGEST, classify
from anchor.moderation.personal.text import CJK, Span, digit, is_numeral

_MAX_JOINER = 6  # characters between two groups of one number
_WEAK_JOINERS = set("、,，;；:：")
_NEVER_JOINERS = set("!！?？\n\r\t")
_WEAK_SHAPE = (3, 4, 4)
_UNITS = set("元块角毛岁年月日号天周人个次条件台名位小时分秒米斤吨%")
_BRACKETS = {"(": ")", "[": "]", "{": "}", "【": "】", "<": ">", "〔": "〕"}
_WORD_CHAR = re.compile(rf"[a-z{CJK}]")


@dataclass(frozen=True, slots=True)
class _Group:
    start: int
    end: int
    digits: str
    weak: bool = False  # joined to the group before it by list punctuation only


def find_numbers(folded: str, taken: Sequence[Span]) -> list[Span]:
    """Spans of personal numbers in ``folded`` outside the spans already ``taken``."""
    found: list[Span] = []
    for chain in _chains(folded, taken):
        found.extend(_numbers_in(folded, chain))
    return found


def _groups(folded: str) -> Iterator[_Group]:
    """Runs of digits of one script; an ID's closing X joins the run before it."""
    at, size = 0, len(folded)
    while at < size:
        first = digit(folded[at])
        if first is None:
            at += 1
            continue
        numeral = is_numeral(folded[at])
        start, digits = at, [first]
        at += 1
        while at < size and (value := digit(folded[at])) is not None:
            if is_numeral(folded[at]) != numeral:
                break
            digits.append(value)
            at += 1
        if at < size and folded[at] == "x" and not numeral and not _is_word_at(folded, at + 1):
            digits.append("X")
            at += 1
        yield _Group(start, at, "".join(digits))


def _chains(folded: str, taken: Sequence[Span]) -> list[list[_Group]]:
    """Groups outside ``taken``, chained when only a joiner stands between them."""
    chains: list[list[_Group]] = []
    previous: _Group | None = None
    for group in _groups(folded):
        if any(span.start < group.end and group.start < span.end for span in taken):
            previous = None
            continue
        join = None if previous is None else _join(folded[previous.end : group.start], previous)
        if join is None:
            chains.append([group])
        else:
            group = _Group(group.start, group.end, group.digits, weak=join == "weak")
            chains[-1].append(group)
        previous = group
    return chains


def _join(between: str, previous: _Group) -> str | None:
    """How ``between`` joins two groups: "strong", "weak" (list punctuation) or None."""
    if previous.digits.endswith("X"):
        return None
    if not between:
        return "strong"  # a change of script: 138一二三四
    if len(between) > _MAX_JOINER or _NEVER_JOINERS.intersection(between):
        return None
    if any(char.isalnum() or _WORD_CHAR.match(char) for char in between):
        return None
    return "weak" if _WEAK_JOINERS.intersection(between) else "strong"


def _numbers_in(folded: str, chain: list[_Group]) -> list[Span]:
    """Personal numbers made of whole groups of a chain, longest first from the left."""
    found: list[Span] = []
    first = 0
    while first < len(chain):
        number = _number_at(folded, chain, first)
        if number is None:
            first += 1
            continue
        last, kind = number
        start, end = _widened(folded, chain[first].start, chain[last].end)
        found.append(Span(start, end, kind))
        first = last + 1
    return found


def _number_at(folded: str, chain: list[_Group], first: int) -> tuple[int, str] | None:
    """(last group, kind) of the longest number starting at group ``first``, or None.

    Numbers that tell their kind by their digits come before those a cue word names, so
    "电话13800138000 2人" masks the mobile and keeps the count.
    """
    candidates = list(reversed(list(_prefixes(chain, first))))
    cues: list[str | None] = [None]
    if (cue := cue_before(folded, chain[first].start)) is not None:
        cues.append(cue)
    for cue in cues:
        for last, digits in candidates:
            kind = classify(digits, cue)
            if kind is not None and _weakly_joined_ok(folded, chain[first : last + 1], kind):
                return last, kind
    return None


def _prefixes(chain: list[_Group], first: int) -> Iterator[tuple[int, str]]:
    """(last, digits) for the runs of whole groups from ``first`` short enough to be a number."""
    digits = ""
    for last in range(first, len(chain)):
        digits += chain[last].digits
        if len(digits) > LONGEST:
            return
        yield last, digits


def _weakly_joined_ok(folded: str, groups: list[_Group], kind: str) -> bool:
    """A number read across list punctuation must be a mobile grouped 3-4-4, not counted."""
    if not any(group.weak for group in groups[1:]):
        return True
    shape = tuple(len(group.digits) for group in groups)
    return (
        kind == "mobile"
        and shape == _WEAK_SHAPE
        and folded[groups[-1].end : groups[-1].end + 1] not in _UNITS
    )


def _widened(folded: str, start: int, end: int) -> tuple[int, int]:
    """The span widened to the "+" of a country code and to brackets the number opens or
    closes: "+86 138…", "(020)12345678", "(+86)186…", "【137】【1234】【5678】"."""
    if start > 0 and folded[start - 1] == "+":
        start -= 1
    if start > 0 and (close := _BRACKETS.get(folded[start - 1])) and close in folded[start:end]:
        start -= 1
    inside = folded[start:end]
    if end < len(folded) and any(
        folded[end] == close and inside.count(opening) > inside.count(close)
        for opening, close in _BRACKETS.items()
    ):
        end += 1
    return start, end


def _is_word_at(folded: str, at: int) -> bool:
    return at < len(folded) and folded[at].isalnum() and folded[at].isascii()
