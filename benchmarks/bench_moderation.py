"""How well and how fast moderation screens: the catch rate on evasive texts, the
false-positive rate on innocent and on help-seeking ones, and what one screening costs.

The evaluation sets are tests/data/moderation_evasive.txt (texts that must be refused:
spacing, symbols, inserted digits, kana and letters, invisible characters, look-alike
letters, full-width, tone-number and plain pinyin, traditional characters, sound-alikes, a
listed word running on into a longer one, adverts that borrow an opposing or victim frame),
tests/data/moderation_innocent.txt (ordinary union-channel questions and words that share
characters or sounds with listed ones) and tests/data/moderation_help_seeking.txt (workers'
questions and union talking points that hold a listed word as its opposer, reporter, victim
or asker: they pass only by the context rule). They were written alongside the rules and the
starter lists, so the rates say what the rules were built to do, not how they fare on texts
nobody had seen. The moderator is the one the default config builds: the five category
lists and moderation/sensitive.txt.

Screening time is measured per question (every text of the three sets, `--rounds` times), per
aired line (every sentence of the union FAQ's answers and the demo schedule) and for a
question of the longest length accepted (200 characters); the time personal-data masking
takes on the same texts is printed beside it, since every screening starts with it.

    .venv/bin/python benchmarks/bench_moderation.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anchor.config import DEFAULT_WORDLISTS  # noqa: E402
from anchor.harness.moderation_sets import evaluate, percentile, read_cases  # noqa: E402
from anchor.moderation import Moderator, mask_personal_data  # noqa: E402

DATA = ROOT / "tests" / "data"
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")


def _aired_lines() -> list[str]:
    """Sentences of the union FAQ's answers and of the demo schedule, as they go on air."""
    entries = yaml.safe_load((ROOT / "knowledge" / "union-faq.yaml").read_text("utf-8"))
    schedule = yaml.safe_load((ROOT / "schedules" / "union-demo.yaml").read_text("utf-8"))
    texts = [entry["answer"] for entry in entries["entries"]]
    for segment in schedule["segments"]:
        texts.extend(p if isinstance(p, str) else p["text"] for p in segment["points"])
    return [s.strip() for text in texts for s in _SENTENCE_END.split(text) if s.strip()]


def _timed(screen: Callable[[str], object], texts: list[str], rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            screen(text)
            seconds.append(time.perf_counter() - started)
    return seconds


def _short(where: str) -> str:
    return where.removeprefix(f"{ROOT}/")


def _micro(seconds: list[float]) -> str:
    mean = sum(seconds) / len(seconds)
    return f"mean {mean * 1e6:.0f} µs, p95 {percentile(seconds, 95) * 1e6:.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="timing rounds over each set")
    args = parser.parse_args()

    started = time.perf_counter()
    moderator = Moderator([ROOT / path for path in DEFAULT_WORDLISTS])
    load_s = time.perf_counter() - started
    evasive = read_cases(DATA / "moderation_evasive.txt")
    innocent = read_cases(DATA / "moderation_innocent.txt")
    help_seeking = read_cases(DATA / "moderation_help_seeking.txt")
    result = evaluate(moderator.screen, evasive, innocent)
    helped = evaluate(moderator.screen, [], help_seeking)

    print(
        f"word lists: {len(moderator)} words in {len(DEFAULT_WORDLISTS)} files,"
        f" loaded in {load_s:.2f} s"
    )
    caught = result.evasive - len(result.misses)
    print(f"caught: {caught}/{result.evasive} evasive texts ({result.catch_rate:.1%})")
    for case in result.misses:
        print(f"  missed [{case.kind}] {case.text!r}  ({_short(case.where)})")
    missed_by_kind = Counter(case.kind for case in result.misses)
    if missed_by_kind:
        print("  misses by technique: " + ", ".join(f"{k} {n}" for k, n in missed_by_kind.items()))
    print(
        f"false positives: {len(result.false_positives)}/{result.innocent} innocent texts"
        f" ({result.false_positive_rate:.1%})"
    )
    for case, reason in result.false_positives:
        print(f"  refused [{case.kind}] {case.text!r}: {reason}  ({_short(case.where)})")
    print(
        f"help-seeking refused: {len(helped.false_positives)}/{helped.innocent} texts"
        f" ({helped.false_positive_rate:.1%}); {len(helped.by_context)} passed by the"
        " context rule"
    )
    for case, reason in helped.false_positives:
        print(f"  refused [{case.kind}] {case.text!r}: {reason}  ({_short(case.where)})")
    must_pass = result.innocent + helped.innocent
    refused = len(result.false_positives) + len(helped.false_positives)
    print(f"innocent and help-seeking refused: {refused}/{must_pass} ({refused / must_pass:.1%})")
    if result.by_context:
        passed = ", ".join(repr(case.text) for case in result.by_context)
        print(f"  innocent texts that needed the context rule: {passed}")

    texts = [case.text for case in (*evasive, *innocent, *help_seeking)]
    lines = _aired_lines()
    longest = ("".join(lines))[:200]
    print("screening time (personal-data masking, which every screening starts with, apart):")
    for label, sample, rounds in [
        ("per question (the three sets)", texts, args.rounds),
        (f"per aired line ({len(lines)} FAQ and schedule sentences)", lines, args.rounds),
        ("a 200-character question", [longest], args.rounds * 20),
    ]:
        whole = _timed(moderator.screen, sample, rounds)
        masking = _timed(mask_personal_data, sample, rounds)
        print(f"  {label}: {_micro(whole)}; masking alone {_micro(masking)}")


if __name__ == "__main__":
    main()
