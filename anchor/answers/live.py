"""The knowledge base on air, replaced when union staff save a new version of its file.

Staff fix an answer or add an entry during a 24-hour show; restarting the stream for that
would cut the picture. So the file is watched (its size and modification time, polled: no
platform-specific notifier, and a network share works too). A changed file is loaded and
embedded in a worker thread through the same ``RetrieverFactory`` as at start, and swapped
in whole, so the next question is answered from the new version and a question being
answered meanwhile finishes with the old one. A broken file is logged with every error
(file:line) and ignored: the old knowledge base keeps answering.

A large knowledge base seen for the first time takes a minute to embed on a small machine
(a thousand entries). The show does not wait for it: its entries are answered by the
lexical retriever (calibrated to the same threshold) until ``watch`` has embedded them
in the background, then by the semantic one. A union's FAQ of a hundred entries, or one
whose vectors are cached, is semantic from the first question.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from anchor.answers.knowledge import Hit, KnowledgeBase, KnowledgeError
from anchor.answers.retrieval import LexicalRetriever, Retriever, RetrieverFactory

log = logging.getLogger(__name__)


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


class LiveKnowledge:
    """A Retriever that always answers from the newest valid version of one file."""

    def __init__(self, factory: RetrieverFactory, path: Path, current: Retriever) -> None:
        self._factory = factory
        self.path = Path(path)
        self._current = current
        self._seen = _signature(self.path)
        self._unembedded: KnowledgeBase | None = None  # answered by words until embedded
        self.reloads = 0

    @classmethod
    async def open(cls, factory: RetrieverFactory, path: Path) -> LiveKnowledge:
        """Load ``path`` off the event loop; raises KnowledgeError when it is invalid."""
        seen = _signature(Path(path))
        knowledge = await asyncio.to_thread(KnowledgeBase.load, path)
        ready = await asyncio.to_thread(factory.quick, knowledge)
        live = cls(factory, path, ready or LexicalRetriever(knowledge))
        live._seen = seen  # an edit during the first load is picked up by the first check
        if ready is None:
            live._unembedded = knowledge
            log.info(
                "knowledge base %s: %d entries, answered by the lexical retriever until "
                "they are embedded in the background (about a minute per thousand entries)",
                path,
                len(knowledge),
            )
        return live

    @property
    def kind(self) -> str:
        """``semantic`` or ``lexical``: which retriever answers right now."""
        return "lexical" if isinstance(self._current, LexicalRetriever) else "semantic"

    async def finish_loading(self) -> None:
        """Embed a knowledge base that ``open`` left to the lexical retriever, then use it."""
        knowledge, self._unembedded = self._unembedded, None
        if knowledge is None:
            return
        embedded = await asyncio.to_thread(self._factory.build, knowledge)
        if self._current.knowledge is knowledge:  # not replaced by a reload meanwhile
            self._current = embedded
            log.info("knowledge base %s embedded: semantic retrieval from now on", self.path)

    @property
    def knowledge(self) -> KnowledgeBase:
        return self._current.knowledge

    def search(self, text: str, limit: int = 3) -> list[Hit]:
        return self._current.search(text, limit)

    async def reload_if_changed(self) -> bool:
        """Load the file again if it changed since it was last read; True if swapped in."""
        seen = _signature(self.path)
        if seen is None or seen == self._seen:
            return False
        self._seen = seen
        try:
            fresh = await self._factory.aload(self.path)
        except KnowledgeError as exc:
            log.error(
                "the edited knowledge base is not used (the previous version keeps answering):\n%s",
                exc,
            )
            return False
        self._current = fresh
        self.reloads += 1
        log.info("knowledge base reloaded: %s, %d entries", self.path, len(fresh.knowledge))
        return True

    async def watch(self, every_s: float) -> None:
        """Finish loading, then check the file every ``every_s`` seconds (0: never)."""
        await self.finish_loading()
        while every_s > 0:
            await asyncio.sleep(every_s)
            try:
                await self.reload_if_changed()
            except Exception:  # a reload must never take the show down
                log.exception("reloading the knowledge base %s failed", self.path)
