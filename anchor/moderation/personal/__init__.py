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

Masking is idempotent: masking a masked text changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from anchor.moderation.personal.accounts import find_accounts
from anchor.moderation.personal.addresses import find_addresses
from anchor.moderation.personal.names import find_names
from anchor.moderation.personal.numbers import find_numbers
from anchor.moderation.personal.text import Span, fold

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

__all__ = ["PLACEHOLDERS", "mask_personal_data"]


def mask_personal_data(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` with personal data replaced by placeholders, and the kinds that were masked
    (each once, in order of first appearance)."""
    folded = fold(text)
    spans = _without_overlaps(find_accounts(folded), [])
    spans = _without_overlaps(find_numbers(folded, spans), spans)
    spans = _without_overlaps(find_addresses(folded), spans)
    spans = _without_overlaps(find_names(folded), spans)
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
