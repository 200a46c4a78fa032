"""What retrieval costs and how well it answers, semantic and lexical side by side.

Prints, on this machine, pinned to one core:

- the embedding model's load time and memory (RSS before and after loading it);
- a generated 1,000-entry knowledge base (question, one alternate, answer): load time the
  first time (embedding everything) and again from the vector cache;
- retrieval time per question (median and p95) on that knowledge base;
- for each evaluation set in knowledge/eval/ (dev, set-a, set-b, set-c, as they exist), with
  the one shipped threshold (``knowledge.min_score``): in-scope questions given the right
  entry and out-of-scope questions given the fallback, for both retrievers.

``--calibrate`` refits the logistic weights of ``anchor/answers/retrieval.py`` on the
calibration knowledge bases only (knowledge/eval/dev and the shipped union FAQ with every
entry's alternates cut to one); the held-out sets are never used for fitting.

    .venv/bin/python benchmarks/bench_retrieval.py [--calibrate] [--skip-load]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psutil

from anchor.answers.embedding import EncoderUnavailable, SentenceEncoder, load_encoder
from anchor.answers.evaluation import EvalQuestion, evaluate, read_questions, tally
from anchor.answers.knowledge import Entry, KnowledgeBase
from anchor.answers.retrieval import (
    LexicalRetriever,
    Retriever,
    SemanticRetriever,
)
from anchor.answers.vectorcache import VectorCache
from anchor.config import KnowledgeConfig

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "knowledge" / "eval"
EVAL_SETS = ("dev", "set-a", "set-b", "set-c")
CITIES = [
    "广州", "深圳", "珠海", "汕头", "佛山", "韶关", "湛江", "肇庆", "江门", "茂名", "惠州",
    "梅州", "汕尾", "河源", "阳江", "清远", "东莞", "中山", "潮州", "揭阳", "云浮",
]  # fmt: skip


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def one_core() -> None:
    """Pin the process to one CPU, as on a busy 2-core box where the encoder has the other."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def generated_knowledge(count: int) -> KnowledgeBase:
    """``count`` distinct entries in the shipped FAQ's style: city × shipped entry."""
    shipped = KnowledgeBase.load(ROOT / "knowledge" / "union-faq.yaml").entries
    entries = []
    for index in range(count):
        base = shipped[index % len(shipped)]
        city = CITIES[index // len(shipped) % len(CITIES)]
        entries.append(
            Entry(
                id=f"{base.id}-{index}",
                question=f"{city}{base.question}",
                alternates=(f"在{city}{base.alternates[0]}",) if base.alternates else (),
                answer=f"在{city}，{base.answer}",
            )
        )
    return KnowledgeBase(entries)


def calibration_sets() -> list[tuple[str, KnowledgeBase, list[EvalQuestion]]]:
    shipped = KnowledgeBase.load(ROOT / "knowledge" / "union-faq.yaml")
    one_alternate = KnowledgeBase(
        [
            entry.model_copy(update={"alternates": entry.alternates[:1]})
            for entry in shipped.entries
        ],
        source=shipped.source,
    )
    dev = KnowledgeBase.load(EVAL / "dev" / "kb.yaml")
    return [
        (
            "union-faq (1 alternate)",
            one_alternate,
            read_questions(
                ROOT / "benchmarks" / "calibration" / "union-faq-questions.tsv", shipped
            ),
        ),
        ("dev", dev, read_questions(EVAL / "dev" / "questions.tsv", dev)),
    ]


def calibrate() -> None:
    """Choose how the three signals combine, then where "more likely right than wrong" is.

    A grid over the mix of the signals ranks the entries; for each mix the threshold that
    maximises the worst of (in-scope right, out-of-scope refused) over the calibration sets
    is found; the best mix wins (ties: the wider gap around the threshold). Last, the slope
    of the logistic is fitted so that its probabilities match how often the top entry is
    right, with 0.5 at that threshold.
    """
    encoder = load_encoder()
    per_set = []
    for name, knowledge, questions in calibration_sets():
        retriever = SemanticRetriever(knowledge, encoder)
        signals = np.stack([retriever.signals(q.text) for q in questions])
        ids = [e.id for e in knowledge.entries]
        expected = np.array(
            [-1 if q.expected is None else ids.index(q.expected) for q in questions]
        )
        per_set.append((name, signals, expected))
    best: tuple[float, float, np.ndarray, float] | None = None
    for mix in np.linspace(0, 1, 21):
        for lexical in (0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3):
            direction = np.array([mix, 1 - mix, lexical])
            threshold, worst, gap = _best_threshold(per_set, direction)
            if best is None or (worst, gap) > (best[0], best[1]):
                best = (worst, gap, direction, threshold)
    assert best is not None
    worst, _, direction, threshold = best
    top_margin, right = [], []
    for _, signals, expected in per_set:
        scores = signals @ direction
        top = scores.argmax(1)
        top_margin.extend(scores.max(1) - threshold)
        right.extend(top == expected)
    slope = _fit_slope(np.array(top_margin), np.array(right, dtype=float))
    weights = slope * direction
    print(f"mix {direction}, threshold {threshold:.4f}, worst-case share right {worst:.3f}")
    print(
        f"SEMANTIC_CALIBRATION = Calibration(bias={-slope * threshold:.3f}, "
        f"weights=({', '.join(f'{w:.3f}' for w in weights)}))"
    )
    lexical_sets = [(name, signals[:, :, 2:3], expected) for name, signals, expected in per_set]
    threshold, worst, _ = _best_threshold(lexical_sets, np.array([1.0]))
    margins, right = [], []
    for _, signals, expected in lexical_sets:
        scores = signals[:, :, 0]
        margins.extend(scores.max(1) - threshold)
        right.extend(scores.argmax(1) == expected)
    slope = _fit_slope(np.array(margins), np.array(right, dtype=float))
    print(f"lexical: threshold {threshold:.4f}, worst-case share right {worst:.3f}")
    print(
        f"LEXICAL_CALIBRATION = Calibration(bias={-slope * threshold:.3f}, weights=({slope:.3f},))"
    )
    print("(paste into anchor/answers/retrieval.py, then run this script without --calibrate)")


def _best_threshold(
    per_set: Sequence[tuple[str, np.ndarray, np.ndarray]], direction: np.ndarray
) -> tuple[float, float, float]:
    """The threshold maximising the worst share right over the sets; its gap to the nearest
    top score (a wider one holds better on new questions)."""
    tops = []
    for _, signals, expected in per_set:
        scores = signals @ direction
        tops.append((scores.max(1), scores.argmax(1) == expected, expected >= 0))
    candidates = np.unique(np.concatenate([top for top, _, _ in tops]))
    best = (0.0, -1.0, 0.0)
    for low, high in zip(candidates[:-1], candidates[1:], strict=True):
        threshold = (low + high) / 2
        worst = 1.0
        for top, right, in_scope in tops:
            found = np.mean((top >= threshold) & right & in_scope) / max(np.mean(in_scope), 1e-9)
            refused = np.mean((top < threshold) & ~in_scope) / max(np.mean(~in_scope), 1e-9)
            worst = min(worst, found, refused)
        gap = (high - low) / (candidates[-1] - candidates[0] + 1e-12)
        if (worst, gap) > (best[1], best[2]):
            best = (float(threshold), float(worst), float(gap))
    return best


def _fit_slope(margins: np.ndarray, right: np.ndarray) -> float:
    """The slope k of P(right) = 1 / (1 + exp(-k * margin)), by maximum likelihood."""
    best_k, best_ll = 1.0, -np.inf
    for k in np.geomspace(0.5, 2000, 400):
        p = np.clip(1 / (1 + np.exp(-k * margins)), 1e-9, 1 - 1e-9)
        ll = float(np.sum(right * np.log(p) + (1 - right) * np.log(1 - p)))
        if ll > best_ll:
            best_k, best_ll = float(k), ll
    return best_k


def score_sets(threshold: float, *, held_out: bool) -> None:
    try:
        encoder: SentenceEncoder | None = load_encoder()
    except EncoderUnavailable as exc:
        print(f"semantic retrieval unavailable: {exc}")
        encoder = None
    rows = calibration_sets()[:1]
    for name in EVAL_SETS if held_out else EVAL_SETS[:1]:
        folder = EVAL / name
        if (folder / "kb.yaml").is_file() and (folder / "questions.tsv").is_file():
            knowledge = KnowledgeBase.load(folder / "kb.yaml")
            rows.append((name, knowledge, read_questions(folder / "questions.tsv", knowledge)))
    print(f"\nthreshold {threshold} (knowledge.min_score); right entry in scope / fallback out")
    print(f"{'set':26} {'entries':>7} {'in/out':>7}  {'semantic':>18}  {'lexical':>18}")
    for name, knowledge, questions in rows:
        retrievers: list[Retriever] = [LexicalRetriever(knowledge)]
        if encoder is not None:
            retrievers.insert(0, SemanticRetriever(knowledge, encoder))
        cells = []
        for retriever in retrievers:
            counts = tally(evaluate(retriever, questions), threshold)
            cells.append(f"{counts.found_share:6.1%} / {counts.refused_share:6.1%}")
        if encoder is None:
            cells.insert(0, "unavailable")
        counts = tally(evaluate(retrievers[-1], questions), threshold)
        sizes = f"{counts.in_scope}/{counts.out_of_scope}"
        held = "" if name in ("dev", "union-faq (1 alternate)") else " (held out)"
        print(f"{name + held:26} {len(knowledge):7} {sizes:>7}  {cells[0]:>18}  {cells[1]:>18}")


def measure_cost(questions: Sequence[str]) -> None:
    before = rss_mb()
    started = time.perf_counter()
    encoder = load_encoder()
    encoder.questions(["预热"])
    print(
        f"model load: {time.perf_counter() - started:.2f} s; RSS {before:.0f} → {rss_mb():.0f} MB"
    )
    knowledge = generated_knowledge(1000)
    texts = sum(1 + len(e.alternates) for e in knowledge.entries)
    with tempfile.TemporaryDirectory() as folder:
        cache = VectorCache(Path(folder), 64 * 1024 * 1024)
        started = time.perf_counter()
        SemanticRetriever(knowledge, encoder, cache=cache)
        first = time.perf_counter() - started
        started = time.perf_counter()
        retriever = SemanticRetriever(knowledge, encoder, cache=cache)
        cached = time.perf_counter() - started
    print(
        f"1,000-entry KB ({texts} questions + 1,000 answers): first load {first:.1f} s, "
        f"from the vector cache {cached:.2f} s; RSS now {rss_mb():.0f} MB"
    )
    times = []
    for _ in range(3):
        for question in questions:
            started = time.perf_counter()
            retriever.search(question)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    print(
        f"retrieval per question on the 1,000-entry KB, one core: median "
        f"{statistics.median(times):.1f} ms, p95 {p95:.1f} ms ({len(times)} searches)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="refit the calibration weights")
    parser.add_argument("--skip-load", action="store_true", help="only the evaluation sets")
    parser.add_argument(
        "--calibration-sets", action="store_true", help="score only the sets fitted on"
    )
    args = parser.parse_args(argv)
    one_core()
    if args.calibrate:
        calibrate()
        return 0
    if not args.skip_load:
        dev = EVAL / "dev" / "kb.yaml"
        sample = [q.text for q in read_questions(EVAL / "dev" / "questions.tsv",
                                                 KnowledgeBase.load(dev))]  # fmt: skip
        measure_cost(sample)
    score_sets(KnowledgeConfig().min_score, held_out=not args.calibration_sets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
