"""Personal data a viewer typed, masked before anything is stored, shown, spoken or published.

A host that reads out a worker's phone number cannot be put on air, so this errs on the side
of masking; but a union channel lives on numbers (the 12351 hotline, dates, amounts, articles
of law), and those must still read normally. What is masked, each as a placeholder that reads
well in speech:

- numbers (numbers.py, kinds.py, cues.py): mobiles [手机号], landlines and other phone numbers
  [电话], ID cards (18 and 15 digits) [身份证号], bank cards [银行卡号], QQ numbers [QQ号] and
  numeric WeChat ids [微信号], in any width, in Chinese numerals, and with spaces, dots,
  slashes, brackets or emoji between the groups;
- e-mail addresses [邮箱] and WeChat ids in letters [微信号] (accounts.py), also spelled out;
- street addresses, buildings and rooms [地址] (addresses.py);
- names after a self-introduction [姓名] (names.py).

What is deliberately left alone: numbers that are not personal (12351, service numbers such
as 12333 or 400 lines, dates, times, amounts, article numbers, years, percentages, counts),
short numbers without a cue word (8 digits are an amount unless "QQ" or "电话" stands before
them), cities and districts, and nicknames (小王, 阿明).

Nor is what the union itself publishes (`PublicData`): the phone numbers and street addresses
of its service sites, read out when a viewer asks where the nearest one is. Those are exact
values from the operator's own dataset, so only a span that *is* one of them is let through,
digit for digit (in any width or in Chinese numerals) or as part of a published address;
anything else of the same shape is masked as before.

Masking is idempotent: masking a masked text changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from anchor.moderation.personal.accounts import find_accounts
from anchor.moderation.personal.addresses import find_addresses
from anchor.moderation.personal.names import find_names
from anchor.moderation.personal.numbers import find_numbers
from anchor.moderation.personal.text import Span, digit, fold

PLACEHOLDERS = {
    "mobile": "[手机号]",
    "phone": "[电话]",
    "id_card": "[身份证号]",
    "bank_card": "[银行卡号]",
    "email": "[邮箱]",
    "qq": "[QQ号]",
    "wechat": "[微信号]",
    "address": "[地址]",
    "name": "[姓名]",
}

__all__ = ["PLACEHOLDERS", "PublicData", "mask_personal_data"]

_PHONE_KINDS = frozenset({"mobile", "phone"})


@dataclass(frozen=True, slots=True)
class PublicData:
    """Phone numbers and addresses the union publishes: never masked as a viewer's."""

    numbers: frozenset[str] = frozenset()  # digits only
    addresses: tuple[str, ...] = ()  # folded

    @classmethod
    def of(cls, numbers: Iterable[str], addresses: Iterable[str]) -> PublicData:
        digits = (_digits(number) for number in numbers)
        return cls(
            frozenset(d for d in digits if len(d) >= 5),
            tuple(sorted({fold(a) for a in addresses if a.strip()})),
        )

    def covers(self, folded: str, span: Span) -> bool:
        part = folded[span.start : span.end]
        if span.kind in _PHONE_KINDS:
            return _digits(part) in self.numbers
        if span.kind == "address":
            return any(part in address for address in self.addresses)
        return False


def mask_personal_data(text: str, public: PublicData | None = None) -> tuple[str, tuple[str, ...]]:
    """``text`` with personal data replaced by placeholders, and the kinds that were masked
    (each once, in order of first appearance). Spans that are `public` stay as they are."""
    folded = fold(text)
    spans = _without_overlaps(find_accounts(folded), [])
    spans = _without_overlaps(find_numbers(folded, spans), spans)
    spans = _without_overlaps(find_addresses(folded), spans)
    spans = _without_overlaps(find_names(folded), spans)
    if public is not None:
        spans = [span for span in spans if not public.covers(folded, span)]
    if not spans:
        return text, ()
    spans.sort()
    parts: list[str] = []
    kinds: list[str] = []
    at = 0
    for start, end, kind in spans:
        parts.append(text[at:start])
        parts.append(PLACEHOLDERS[kind])
        at = end
        if kind not in kinds:
            kinds.append(kind)
    parts.append(text[at:])
    return "".join(parts), tuple(kinds)


def _without_overlaps(found: Iterable[Span], kept: list[Span]) -> list[Span]:
    """``kept`` and those of ``found`` that overlap nothing kept; earlier and longer first."""
    result = list(kept)
    for span in sorted(found, key=lambda s: (s.start, -s.end)):
        if all(span.end <= other.start or other.end <= span.start for other in result):
            result.append(span)
    return result


def _digits(text: str) -> str:
    return "".join(d for d in map(digit, fold(text)) if d is not None)
