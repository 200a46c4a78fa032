"""The moderation evaluation sets, and how a moderator fares on them.

Plain-text files in tests/data: evasive texts that must be refused (moderation_evasive.txt),
and texts that must pass: innocent ones (moderation_innocent.txt) and questions and talking
points that hold a listed word in an opposing, reporting or victim frame
(moderation_help_seeking.txt), which pass only by the context rule. One case per line,
``kind<TAB>text``; ``#`` lines are comments; ``\\uXXXX`` and ``\\UXXXXXXXX`` in a text stand for
that character, so invisible ones can be written down and reviewed. Used by the test that
holds the catch and false-positive rates and by benchmarks/bench_moderation.py.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from anchor.moderation import Screening

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})")


@dataclass(frozen=True, slots=True)
class Case:
    """One text of an evaluation set."""

    kind: str  # the evasion technique, or the kind of innocent text
    text: str
    where: str  # "path:line"


@dataclass(slots=True)
class Evaluation:
    """What a moderator did with the two sets, and how long each screening took."""

    evasive: int
    innocent: int
    misses: list[Case] = field(default_factory=list)  # evasive texts let through
    false_positives: list[tuple[Case, str]] = field(default_factory=list)  # with the reason
    by_context: list[Case] = field(default_factory=list)  # passed only by the context rule
    seconds: list[float] = field(default_factory=list)  # one per screening

    @property
    def catch_rate(self) -> float:
        return 1 - len(self.misses) / self.evasive if self.evasive else 1.0

    @property
    def false_positive_rate(self) -> float:
        return len(self.false_positives) / self.innocent if self.innocent else 0.0

    @property
    def mean_seconds(self) -> float:
        return sum(self.seconds) / len(self.seconds) if self.seconds else 0.0

    @property
    def p95_seconds(self) -> float:
        return percentile(self.seconds, 95)


def read_cases(path: Path) -> list[Case]:
    """The cases of one set; a line without a tab is an error naming the file and line."""
    cases: list[Case] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        kind, tab, text = line.partition("\t")
        if not tab or not text:
            raise ValueError(f"{path}:{number}: expected 'kind<TAB>text'")
        decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)
        cases.append(Case(kind.strip(), decoded, f"{path}:{number}"))
    return cases


def evaluate(
    screen: Callable[[str], Screening],
    evasive: Sequence[Case],
    innocent: Sequence[Case],
    rounds: int = 1,
) -> Evaluation:
    """Screen every case ``rounds`` times (verdicts from the first round, times from all)."""
    result = Evaluation(len(evasive), len(innocent))
    for round_number in range(rounds):
        for case, must_refuse in [*((c, True) for c in evasive), *((c, False) for c in innocent)]:
            started = time.perf_counter()
            screening = screen(case.text)
            result.seconds.append(time.perf_counter() - started)
            if round_number:
                continue
            if must_refuse and screening.allowed:
                result.misses.append(case)
            elif not must_refuse and not screening.allowed:
                result.false_positives.append((case, screening.reason or ""))
            if screening.allowed and screening.excused:
                result.by_context.append(case)
    return result


def percentile(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]
