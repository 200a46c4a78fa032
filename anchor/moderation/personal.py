"""Personal data a viewer typed into a question, masked before anything is stored, shown,
spoken or published.

What is masked, and what is deliberately left alone:

- **Mainland mobile numbers**: 11 digits starting 13–19, also written in groups with spaces or
  dashes ("138 0013 8000") and with a +86 / 0086 / 86 prefix.
- **ID-card numbers** (18 characters, the last may be X): masked when the area digit and the
  birth date are plausible, *whether or not the check digit is right*. A viewer who mistypes
  one digit has still published who they are; the check digit only decides, for an all-digit
  number that is also a valid bank-card number, which of the two it is called.
- **Bank-card numbers**: 16–19 digits, grouped or not, that pass the Luhn check. The check is
  what tells a card from an order number, so a number that fails it is left as typed.
- **E-mail addresses**.

Digits are read in whole groups: a number inside a longer run of digits is not picked out,
so 12351 (the union hotline), amounts, dates, years and six-digit codes stay readable.
Landlines, QQ numbers and numbers written in Chinese numerals are not masked.
"""

from __future__ import annotations

import datetime
import re
import unicodedata

PLACEHOLDERS = {
    "mobile": "[手机号]",
    "id_card": "[身份证号]",
    "email": "[邮箱]",
    "bank_card": "[银行卡号]",
}

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+[@＠][A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# A group of digits, with the "+" of a country code before it and an ID's X after it.
_GROUP = re.compile(r"\+?\d+(?:[Xx](?![A-Za-z0-9]))?")
# What may stand between the groups of one number: a little space and at most one dash.
_JOINER = re.compile(r"[ \t\u3000]{0,2}[-‐‑–—－]?[ \t\u3000]{0,2}")
_LONGEST = 19  # digits: a bank card
_MOBILE_PREFIXES = ("0086", "86")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def mask_personal_data(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` with personal data replaced by placeholders, and the kinds that were masked
    (each once, in order of first appearance)."""
    spans = [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    emails = list(spans)
    for chain in _chains(text, emails):
        spans.extend(_numbers_in(chain))
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


def _chains(text: str, taken: list[tuple[int, int, str]]) -> list[list[re.Match[str]]]:
    """Digit groups outside ``taken``, chained when only a joiner stands between them."""
    chains: list[list[re.Match[str]]] = []
    previous: re.Match[str] | None = None
    for group in _GROUP.finditer(text):
        if any(start < group.end() and group.start() < end for start, end, _ in taken):
            previous = None
            continue
        between = text[previous.end() : group.start()] if previous else ""
        joined = (
            previous is not None
            and between
            and _JOINER.fullmatch(between)
            and previous.group()[-1] not in "Xx"
            and not group.group().startswith("+")
        )
        if joined:
            chains[-1].append(group)
        else:
            chains.append([group])
        previous = group
    return chains


def _numbers_in(chain: list[re.Match[str]]) -> list[tuple[int, int, str]]:
    """Personal numbers made of whole groups of a chain, longest first from the left."""
    found: list[tuple[int, int, str]] = []
    first = 0
    while first < len(chain):
        for last in range(len(chain) - 1, first - 1, -1):
            digits = "".join(_ascii(group.group()) for group in chain[first : last + 1])
            kind = _classify(digits) if len(digits) <= _LONGEST else None
            if kind is not None:
                found.append((chain[first].start(), chain[last].end(), kind))
                first = last + 1
                break
        else:
            first += 1
    return found


def _ascii(group: str) -> str:
    """Full-width and other Unicode digits as ASCII, the "+" dropped, X upper-cased."""
    return "".join(
        "X" if char in "Xx" else str(unicodedata.decimal(char)) for char in group if char != "+"
    )


def _classify(digits: str) -> str | None:
    if _is_mobile(digits):
        return "mobile"
    for prefix in _MOBILE_PREFIXES:
        if digits.startswith(prefix) and _is_mobile(digits[len(prefix) :]):
            return "mobile"
    if "X" in digits[:-1]:
        return None
    if len(digits) == 18 and _plausible_id(digits):
        if digits[-1] != "X" and not _id_check_ok(digits) and _luhn_ok(digits):
            return "bank_card"
        return "id_card"
    if 16 <= len(digits) <= _LONGEST and digits.isdigit() and _luhn_ok(digits):
        return "bank_card"
    return None


def _is_mobile(digits: str) -> bool:
    return len(digits) == 11 and digits.isdigit() and digits[0] == "1" and digits[1] in "3456789"


def _plausible_id(digits: str) -> bool:
    """Area code starting 1–8 and a real birth date between 1900 and 2099."""
    if digits[0] not in "12345678" or not digits[:17].isdigit():
        return False
    year, month, day = int(digits[6:10]), int(digits[10:12]), int(digits[12:14])
    if not 1900 <= year <= 2099:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _id_check_ok(digits: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == digits[17]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0
