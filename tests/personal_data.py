"""The personal-data test set (tests/data/), and what "a secret survived" means.

A secret survives masking when it is still there as typed, or when its digits are: a phone
number half masked, or left in other separators, still reads out. Digits are compared in any
spelling (full width, Chinese numerals), independently of the code under test.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
_NUMERALS = dict(
    zip(
        "〇零○洞一幺壹二两贰三叁四肆五伍六陆七柒拐八捌九玖勾",
        "00001112223344556677788999",
        strict=True,
    )
)
_MIN_DIGITS = 5  # secrets with fewer digits (a house number) are checked as typed only


def personal_forms() -> list[tuple[str, str]]:
    """(text, secret) for every line of personal_data.tsv."""
    forms = []
    for line in _lines("personal_data.tsv"):
        text, secret = line.split("\t")
        assert secret in text, f"the secret {secret!r} is not in {text!r}"
        forms.append((text, secret))
    return forms


def innocent_sentences() -> list[str]:
    return _lines("innocent_numbers.txt")


def survives(secret: str, text: str) -> bool:
    """Whether ``secret`` (or its digits, if it has several) can still be read in ``text``."""
    digits = spelled_digits(secret)
    return secret in text or (len(digits) >= _MIN_DIGITS and digits in spelled_digits(text))


def spelled_digits(text: str) -> str:
    """Every digit of ``text`` in any spelling, as ASCII, everything else dropped."""
    found = []
    for char in text:
        if char in _NUMERALS:
            found.append(_NUMERALS[char])
        elif (value := unicodedata.digit(char, None)) is not None:
            found.append(str(value))
    return "".join(found)


def _lines(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]
