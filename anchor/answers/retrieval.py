"""Finding the entry for a viewer's question, with a score that means the same on every FAQ.

Each union writes its own FAQ, often one question and one alternate per entry, and a single
``knowledge.min_score`` must work on all of them. Raw similarity does not: embedding cosines
of unrelated Chinese sentences sit around 0.85 and of paraphrases around 0.92, and where
that band lies shifts with the FAQ's topics and wording. So the retrievers here turn their
evidence into one number, the estimated probability that the best entry is the right
answer, fitted (logistic regression) on several knowledge bases with paraphrased and
out-of-scope questions: the shipped union FAQ with its alternates cut to one, and
``knowledge/eval/dev`` (``benchmarks/bench_retrieval.py --calibrate`` refits the weights;
the held-out sets ``knowledge/eval/set-*`` are only ever reported, never fitted). The
shipped threshold is therefore 0.5: "more likely right than wrong".

The semantic retriever's evidence for each entry:

- the viewer's question against each written phrasing (question and alternates), best of them;
- the question against the entry's answer text (a viewer often asks what the answer says);
- the lexical lens of ``KnowledgeBase`` (shared words and character bigrams), which keeps
  entries apart that the embedding finds alike ("热线号码" vs "电子书"), and is near zero for
  questions about something the FAQ never mentions.

Where the embedding model cannot run, the lexical retriever answers with the lexical lens
alone, calibrated the same way (it finds fewer paraphrases; the log and ``anchor doctor``
say so).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from anchor.answers.embedding import EncoderUnavailable, SentenceEncoder, load_encoder
from anchor.answers.knowledge import Hit, KnowledgeBase, has_content
from anchor.answers.vectorcache import VectorCache, content_key
from anchor.config import Config, KnowledgeConfig

log = logging.getLogger(__name__)

SIGNALS = ("phrasing", "answer", "lexical")
QUICK_TEXTS = 300  # texts to embed in about 10 s on one core of a small machine


@dataclass(frozen=True, slots=True)
class Calibration:
    """Logistic weights turning a retriever's signals into the probability of a right entry."""

    bias: float
    weights: tuple[float, ...]

    def confidence(self, signals: np.ndarray) -> np.ndarray:
        """Row-wise probability for an (entries × signals) array."""
        logits = self.bias + signals @ np.asarray(self.weights, dtype=np.float64)
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60))), dtype=np.float64)


# Fitted by `benchmarks/bench_retrieval.py --calibrate` on the calibration KBs (see above).
SEMANTIC_CALIBRATION = Calibration(bias=-56.699, weights=(19.035, 44.415, 1.586))
LEXICAL_CALIBRATION = Calibration(bias=-1.347, weights=(6.721,))


class Retriever(Protocol):
    """What the answerer asks: the best entries for a question, best first."""

    @property
    def knowledge(self) -> KnowledgeBase: ...

    def search(self, text: str, limit: int = 3) -> list[Hit]: ...


class LexicalRetriever:
    """The lexical lens alone, its coverage mapped to a calibrated confidence."""

    kind = "lexical"

    def __init__(self, knowledge: KnowledgeBase, calibration: Calibration = LEXICAL_CALIBRATION):
        self._knowledge = knowledge
        self._calibration = calibration

    @property
    def knowledge(self) -> KnowledgeBase:
        return self._knowledge

    def search(self, text: str, limit: int = 3) -> list[Hit]:
        hits = self._knowledge.search(text, limit)
        if not hits:
            return []
        coverage = np.array([[hit.score] for hit in hits], dtype=np.float64)
        confidence = self._calibration.confidence(coverage)
        return [Hit(hit.entry, float(c)) for hit, c in zip(hits, confidence, strict=True)]


class SemanticRetriever:
    """Sentence embeddings of every phrasing and answer, plus the lexical lens.

    Building it embeds the knowledge base (or reads the vectors from ``cache``): blocking
    work, done once per knowledge base, off the event loop. ``search`` embeds the question
    (about 10 ms on one core) and is blocking too: the answerer runs it in a worker thread.
    """

    kind = "semantic"

    def __init__(
        self,
        knowledge: KnowledgeBase,
        encoder: SentenceEncoder,
        *,
        cache: VectorCache | None = None,
        calibration: Calibration = SEMANTIC_CALIBRATION,
    ) -> None:
        self._knowledge = knowledge
        self._encoder = encoder
        self._calibration = calibration
        phrasings, starts = _phrasings(knowledge)
        self._starts = np.array(starts, dtype=np.intp)
        self._phrasings = _vectors(encoder, cache, "question", phrasings)
        self._answers = _vectors(encoder, cache, "answer", [e.answer for e in knowledge.entries])

    @staticmethod
    def texts_to_embed(
        knowledge: KnowledgeBase, encoder: SentenceEncoder, cache: VectorCache | None
    ) -> int:
        """How many texts building one for ``knowledge`` would embed (the rest are cached)."""
        phrasings, _ = _phrasings(knowledge)
        answers = [entry.answer for entry in knowledge.entries]
        return sum(
            0 if _cached(encoder, cache, kind, texts) else len(texts)
            for kind, texts in (("question", phrasings), ("answer", answers))
        )

    @property
    def knowledge(self) -> KnowledgeBase:
        return self._knowledge

    def signals(self, text: str) -> np.ndarray:
        """The (entries × SIGNALS) evidence for ``text``: what the calibration weighs."""
        question = self._encoder.question(text)
        by_phrasing = np.maximum.reduceat(self._phrasings @ question, self._starts)
        by_answer = self._answers @ question
        lexical = np.asarray(self._knowledge.coverage(text), dtype=np.float32)
        return np.stack([by_phrasing, by_answer, lexical], axis=1).astype(np.float64)

    def search(self, text: str, limit: int = 3) -> list[Hit]:
        if not text.strip() or not has_content(text) or limit <= 0:
            return []
        confidence = self._calibration.confidence(self.signals(text))
        best = np.argsort(-confidence, kind="stable")[:limit]
        entries = self._knowledge.entries
        return [Hit(entries[index], float(confidence[index])) for index in best]


def _phrasings(knowledge: KnowledgeBase) -> tuple[list[str], list[int]]:
    """Every written question and alternate, and where each entry's first one is."""
    phrasings: list[str] = []
    starts: list[int] = []
    for entry in knowledge.entries:
        starts.append(len(phrasings))
        phrasings.extend((entry.question, *entry.alternates))
    return phrasings, starts


def _cached(
    encoder: SentenceEncoder, cache: VectorCache | None, kind: str, texts: Sequence[str]
) -> bool:
    return cache is not None and cache.holds(content_key(encoder.identity, kind, texts))


def _vectors(
    encoder: SentenceEncoder, cache: VectorCache | None, kind: str, texts: Sequence[str]
) -> np.ndarray:
    """Embedded ``texts``, from the cache when it holds exactly these texts for this model."""
    key = content_key(encoder.identity, kind, texts)
    if cache is not None:
        stored = cache.get(key, len(texts), encoder.dim)
        if stored is not None:
            return stored
    embed = encoder.questions if kind == "question" else encoder.passages
    vectors = embed(texts)
    if cache is not None:
        cache.put(key, vectors)
    return vectors


class RetrieverFactory:
    """The one way a knowledge base becomes a retriever: ``anchor ask``, ``anchor kb`` and
    the live engine (at start and on reload) all come through here, so they answer alike.

    The embedding model is loaded on first use and kept; if it cannot be used, that is
    logged once and every retriever is lexical.
    """

    def __init__(self, settings: KnowledgeConfig, cache_dir: Path | None) -> None:
        self._settings = settings
        self._cache = (
            VectorCache(cache_dir, settings.vector_cache_mb * 1024 * 1024)
            if cache_dir is not None and settings.vector_cache_mb > 0
            else None
        )
        self._encoder: SentenceEncoder | None = None
        self.unavailable: str | None = None  # why the semantic retriever is not used
        if settings.retriever == "lexical":
            self.unavailable = "knowledge.retriever is 'lexical' in the config"

    @classmethod
    def from_config(cls, config: Config) -> RetrieverFactory:
        return cls(config.knowledge, vector_cache_dir(config))

    @property
    def kind(self) -> str:
        """``semantic`` or ``lexical``: what ``load`` will build (after the first load)."""
        return "lexical" if self.unavailable else "semantic"

    def load(self, path: Path) -> Retriever:
        """Read, validate and index ``path`` (blocking); raises KnowledgeError."""
        return self.build(KnowledgeBase.load(path))

    async def aload(self, path: Path) -> Retriever:
        """``load`` in a worker thread, so the event loop keeps airing meanwhile."""
        return await asyncio.to_thread(self.load, path)

    def build(self, knowledge: KnowledgeBase) -> Retriever:
        """The best retriever for ``knowledge`` (blocking: may embed it)."""
        encoder = self._encoder_or_none()
        if encoder is None:
            return LexicalRetriever(knowledge)
        return SemanticRetriever(knowledge, encoder, cache=self._cache)

    def quick(self, knowledge: KnowledgeBase) -> Retriever | None:
        """A retriever for ``knowledge`` if one is ready within seconds, else None.

        Semantic when few texts need embedding (a union's FAQ, or one already cached);
        None for a large new knowledge base, which ``build`` would take a minute on.
        """
        encoder = self._encoder_or_none()
        if encoder is None:
            return LexicalRetriever(knowledge)
        pending = SemanticRetriever.texts_to_embed(knowledge, encoder, self._cache)
        if pending > QUICK_TEXTS:
            return None
        return SemanticRetriever(knowledge, encoder, cache=self._cache)

    def _encoder_or_none(self) -> SentenceEncoder | None:
        if self._encoder is None and self.unavailable is None:
            try:
                self._encoder = load_encoder()
            except EncoderUnavailable as exc:
                self.unavailable = str(exc)
                log.warning(
                    "semantic retrieval unavailable: %s; answering with the lexical retriever, "
                    "which finds fewer paraphrased questions",
                    exc,
                )
        return self._encoder


def vector_cache_dir(config: Config) -> Path:
    """Where knowledge-base vectors are kept: the config's folder, else next to the store."""
    knowledge = config.knowledge
    if knowledge.vector_cache_dir is not None:
        return Path(knowledge.vector_cache_dir)
    return Path(config.store.path).parent / "kb-vectors"
