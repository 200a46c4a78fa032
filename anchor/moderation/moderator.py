"""Screening a text before it is stored, shown, spoken or published.

Personal data is masked first, and the masked text is what is searched for listed words, so
an e-mail address or a card number can neither trip a word nor hide one. A listed word refuses
the text with a reason that names it (and says when it matched by sound, which is what an
operator needs to add an exemption). Masking personal data is not a reason to refuse.

The lists are files operators edit while the show runs: `reload_if_changed` compares their
modification times and sizes (one stat per file) and recompiles only after a change. A list
that became unreadable is reported once in the log and the previous lists stay in force; the
show never runs unscreened and never stops for a typo in a word list.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anchor.moderation.folding import simplified_chinese
from anchor.moderation.lexicon import Lexicon
from anchor.moderation.matcher import WordMatcher
from anchor.moderation.personal import mask_personal_data
from anchor.moderation.pinyin import PinyinTable
from anchor.moderation.wordlist import ListedWord, ModerationError, read_wordlist

log = logging.getLogger(__name__)

_Signature = tuple[tuple[int, int] | None, ...]


@dataclass(frozen=True, slots=True)
class Screening:
    """The verdict on one text."""

    allowed: bool
    text: str  # personal data masked: the only form that may be spoken, shown or published
    reason: str | None  # why it was refused, e.g. "sensitive word: 赌博"
    masked: tuple[str, ...]  # kinds of personal data masked: mobile, id_card, email, bank_card


class Moderator:
    """Screens texts against word lists that may change while the show runs.

    Construction reads the lists, pypinyin's readings, jieba's word list and OpenCC's
    traditional-to-simplified table (blocking, about a second): use `aload` from async code.
    `screen` is pure and takes well under a millisecond, so it is called directly on the
    event loop.
    """

    def __init__(self, wordlists: Sequence[Path]) -> None:
        self._paths = tuple(Path(path) for path in wordlists)
        self._table = PinyinTable()
        self._lexicon = Lexicon.common_chinese()
        self._simplified = simplified_chinese()
        self._reloading = threading.Lock()
        signature = self._signature()
        self._matcher = self._compile()
        self._loaded: _Signature = signature
        self._failed: _Signature | None = None
        self.last_error: str | None = None

    @classmethod
    async def aload(cls, wordlists: Sequence[Path]) -> Moderator:
        """Construct in a worker thread; raises ModerationError like the constructor."""
        return await asyncio.to_thread(cls, wordlists)

    def __len__(self) -> int:
        """How many words are listed."""
        return len(self._matcher)

    def screen(self, text: str) -> Screening:
        masked_text, kinds = mask_personal_data(text)
        hit = self._matcher.find(masked_text)
        if hit is None:
            return Screening(True, masked_text, None, kinds)
        reason = f"sensitive word: {hit.word}" + (" (by sound)" if hit.by_sound else "")
        return Screening(False, masked_text, reason, kinds)

    def reload_if_changed(self) -> bool:
        """Recompile the lists if a file changed since the last load; True if they were.

        Never raises: a broken list is logged (once per change, also kept in `last_error`)
        and the lists in force stay in force.
        """
        signature = self._signature()
        if signature == self._loaded or signature == self._failed:
            return False
        with self._reloading:
            try:
                matcher = self._compile()
            except ModerationError as exc:
                self._failed = signature
                self.last_error = str(exc)
                log.error("word lists not reloaded, the previous ones stay in force: %s", exc)
                return False
            self._matcher = matcher
            self._loaded = signature
            self._failed = None
            self.last_error = None
        log.info("word lists reloaded: %d words", len(matcher))
        return True

    async def areload_if_changed(self) -> bool:
        """`reload_if_changed` in a worker thread (a changed list is read and compiled)."""
        return await asyncio.to_thread(self.reload_if_changed)

    def _compile(self) -> WordMatcher:
        words: list[ListedWord] = []
        for path in self._paths:
            words.extend(read_wordlist(path))
        return WordMatcher(words, self._table, self._lexicon, self._simplified)

    def _signature(self) -> _Signature:
        stamps: list[tuple[int, int] | None] = []
        for path in self._paths:
            try:
                status = path.stat()
            except OSError:
                stamps.append(None)
            else:
                stamps.append((status.st_mtime_ns, status.st_size))
        return tuple(stamps)
