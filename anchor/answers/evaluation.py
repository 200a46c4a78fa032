"""Trying a knowledge base before it goes on air: ``anchor kb eval`` and ``anchor kb check``.

Union staff know how workers ask; they do not know how retrieval will take it. So they
write down questions the way workers type them, each with the entry that should answer it
(or ``-`` when the host should say the fallback), and see what the host would do: how many
find the right entry, how many out-of-scope questions are turned away, each confusion with
its scores, and how a different ``knowledge.min_score`` would trade one for the other.
``check`` finds what will confuse retrieval before any viewer does: entries that repeat
each other, and entries so alike that asking one's own question brings up the other.

Questions file (UTF-8, tab-separated; ``#`` lines and blank lines are skipped; an optional
header line ``question<TAB>expected``)::

    住院了互助金咋报	mutual-aid-claim
    今天天气怎么样	-
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from anchor.answers.knowledge import Hit, KnowledgeBase
from anchor.answers.retrieval import Retriever
from anchor.yamlsource import SourceError

OUT_OF_SCOPE = "-"
MAX_QUESTIONS_BYTES = 4 * 1024 * 1024


class QuestionsError(SourceError):
    """A questions file could not be used; every problem is listed with file:line."""


@dataclass(frozen=True, slots=True)
class EvalQuestion:
    text: str
    expected: str | None  # entry id, None when the fallback is the right answer
    line: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What retrieval made of one test question."""

    question: EvalQuestion
    best: Hit | None
    expected_score: float | None  # the expected entry's score, None when out of scope

    def answered(self, threshold: float) -> str | None:
        """The entry id the host would answer with at ``threshold``; None: the fallback."""
        if self.best is None or self.best.score < threshold:
            return None
        return self.best.entry.id

    def right(self, threshold: float) -> bool:
        return self.answered(threshold) == self.question.expected


@dataclass(frozen=True, slots=True)
class Tally:
    in_scope: int
    found: int  # in scope, right entry at or above the threshold
    out_of_scope: int
    refused: int  # out of scope, fallback given

    @property
    def found_share(self) -> float:
        return self.found / self.in_scope if self.in_scope else 1.0

    @property
    def refused_share(self) -> float:
        return self.refused / self.out_of_scope if self.out_of_scope else 1.0


def read_questions(path: Path, knowledge: KnowledgeBase) -> list[EvalQuestion]:
    """The test questions in ``path``; raises QuestionsError naming file:line of each problem."""
    path = Path(path)
    try:
        with path.open("rb") as file:  # a huge file is refused without reading it all
            raw = file.read(MAX_QUESTIONS_BYTES + 1)
    except OSError as exc:
        raise QuestionsError([f"{path}:1: cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_QUESTIONS_BYTES:
        raise QuestionsError([f"{path}:1: larger than {MAX_QUESTIONS_BYTES} bytes"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = raw[: exc.start].count(b"\n") + 1
        raise QuestionsError([f"{path}:{where}: not UTF-8 text; save the file as UTF-8"]) from None
    questions: list[EvalQuestion] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            errors.append(
                f"{path}:{number}: expected 'question<TAB>entry id' (or '-' for out of "
                f"scope), got {len(fields)} tab-separated fields"
            )
            continue
        question, expected = fields[0].strip(), fields[1].strip()
        if (question.lower(), expected.lower()) == ("question", "expected"):
            continue
        if not question:
            errors.append(f"{path}:{number}: the question is empty")
        elif not expected:
            errors.append(f"{path}:{number}: no entry id after the tab (use '-' if none fits)")
        elif expected != OUT_OF_SCOPE and expected not in knowledge.ids:
            errors.append(
                f"{path}:{number}: unknown entry id {expected!r} in {_kb_name(knowledge)}"
            )
        else:
            expected_id = None if expected == OUT_OF_SCOPE else expected
            questions.append(EvalQuestion(question, expected_id, number))
    if not questions and not errors:
        errors.append(f"{path}:1: no questions found")
    if errors:
        raise QuestionsError(errors)
    return questions


def evaluate(retriever: Retriever, questions: Iterable[EvalQuestion]) -> list[Outcome]:
    """Ask every question once; scores do not depend on the threshold, so one pass serves all."""
    everything = len(retriever.knowledge)
    outcomes = []
    for question in questions:
        hits = retriever.search(question.text, limit=everything)
        expected_score = None
        if question.expected is not None:
            expected_score = next(
                (hit.score for hit in hits if hit.entry.id == question.expected), 0.0
            )
        outcomes.append(Outcome(question, hits[0] if hits else None, expected_score))
    return outcomes


def tally(outcomes: Sequence[Outcome], threshold: float) -> Tally:
    in_scope = [o for o in outcomes if o.question.expected is not None]
    out_of_scope = [o for o in outcomes if o.question.expected is None]
    return Tally(
        in_scope=len(in_scope),
        found=sum(o.right(threshold) for o in in_scope),
        out_of_scope=len(out_of_scope),
        refused=sum(o.right(threshold) for o in out_of_scope),
    )


def report(outcomes: Sequence[Outcome], threshold: float, path: Path) -> list[str]:
    """The lines ``anchor kb eval`` prints: totals, each confusion, the trade-off table."""
    counts = tally(outcomes, threshold)
    lines = [
        f"threshold {threshold:.2f}: right entry for {counts.found}/{counts.in_scope} in-scope "
        f"questions ({counts.found_share:.0%}); fallback for {counts.refused}/"
        f"{counts.out_of_scope} out-of-scope ({counts.refused_share:.0%})",
    ]
    wrong = [o for o in outcomes if not o.right(threshold)]
    if wrong:
        lines.append(f"confusions ({len(wrong)}):")
    for outcome in wrong:
        got = outcome.answered(threshold)
        best = outcome.best
        best_text = "nothing" if best is None else f"{best.entry.id} {best.score:.2f}"
        expected = outcome.question.expected or "fallback"
        if outcome.expected_score is not None:
            expected += f" {outcome.expected_score:.2f}"
        verdict = "fallback" if got is None else got
        lines.append(
            f"  {path}:{outcome.question.line}: {outcome.question.text} → {verdict} "
            f"(best {best_text}; expected {expected})"
        )
    lines.append("threshold  in-scope right  out-of-scope refused")
    for step in range(5, 100, 5):
        candidate = step / 100
        row = tally(outcomes, candidate)
        mark = "  ← current" if abs(candidate - threshold) < 1e-9 else ""
        lines.append(
            f"  {candidate:.2f}     {row.found_share:6.0%}          {row.refused_share:6.0%}{mark}"
        )
    return lines


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem ``anchor kb check`` reports, located at the entry it concerns."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def check(retriever: Retriever, level: float) -> list[Finding]:
    """Entries that repeat each other, and pairs retrieval will confuse.

    A pair is confusable when asking one entry's own written question (or an alternate)
    gives the other a score of at least ``level``, or ranks the other first: a viewer
    who words it a little differently may then get the other answer.
    """
    knowledge = retriever.knowledge
    findings: list[Finding] = []
    first_answer: dict[str, str] = {}
    for entry in knowledge.entries:
        key = _normal(entry.answer)
        if key in first_answer:
            findings.append(
                Finding(
                    knowledge.where(entry.id),
                    f"entry {entry.id!r} has the same answer as {first_answer[key]!r} "
                    f"({knowledge.where(first_answer[key])}): merge them, with the other's "
                    "question as an alternate",
                )
            )
        else:
            first_answer[key] = entry.id
    reported: set[frozenset[str]] = set()
    for entry in knowledge.entries:
        for phrasing in (entry.question, *entry.alternates):
            hits = retriever.search(phrasing, limit=3)
            own = next((hit.score for hit in hits if hit.entry.id == entry.id), 0.0)
            for rank, hit in enumerate(hits):
                pair = frozenset((entry.id, hit.entry.id))
                if hit.entry.id == entry.id or pair in reported:
                    continue
                if hit.score >= level or rank == 0:
                    reported.add(pair)
                    findings.append(
                        Finding(
                            knowledge.where(entry.id),
                            f"entries {entry.id!r} and {hit.entry.id!r} "
                            f"({knowledge.where(hit.entry.id)}) are easily confused: asking "
                            f"{phrasing!r} gives {hit.entry.id!r} {hit.score:.2f} "
                            f"(itself {own:.2f}); make their questions more different, "
                            "or merge them",
                        )
                    )
    return findings


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(char for char in text if char.isalnum())


def _kb_name(knowledge: KnowledgeBase) -> str:
    return str(knowledge.source) if knowledge.source is not None else "the knowledge base"
