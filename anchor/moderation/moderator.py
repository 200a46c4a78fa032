"""Screening a text before it is stored, shown, spoken or published.

Personal data is masked first, and the masked text is what is searched for listed words, so
an e-mail address or a card number can neither trip a word nor hide one. A listed word refuses
the text with a reason that names it (and says when it matched by sound, which is what an
operator needs to add an exemption). Masking personal data is not a reason to refuse, but a
phone number or an account given in the text makes it an advert for the context rule
(context.py). A word that the context rule let through is named in the screening with the
frame that did it, so an operator can tell why a question holding a listed word was taken;
a word whose frame an advert overruled says so in the reason.

An insult let through as quoted (他骂我傻逼，我能告他吗) is still an insult on air, so the
screened text says `[脏话]` in its place. The matcher reports where it found the insult in
the masked text, which is the text the screening returns, so the bleep and the masks never
shift each other's positions; the whole evasive spelling goes ("傻 逼", "傻*逼", "shabi").
Words excused by any other frame (远离毒品) are fine to say and stay as written.

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

from anchor.moderation.context import CONTACT_KINDS, Excuse, advert_words
from anchor.moderation.folding import CharMap, is_cjk, simplified_chinese, source_span
from anchor.moderation.lexicon import Lexicon
from anchor.moderation.matcher import Finding, WordMatcher
from anchor.moderation.personal import PublicData, mask_personal_data
from anchor.moderation.pinyin import PinyinTable
from anchor.moderation.wordlist import ListedWord, ModerationError, read_wordlist

log = logging.getLogger(__name__)

_Signature = tuple[tuple[int, int] | None, ...]

# What an insult quoted in a question is read out as, in Chinese text and in other text.
_BLEEP = "[脏话]"
_BLEEP_LATIN = "[swear word]"


@dataclass(frozen=True, slots=True)
class Screening:
    """The verdict on one text."""

    allowed: bool
    # Personal data masked and quoted insults bleeped (他骂我[脏话]): the only form that may
    # be spoken, shown or published.
    text: str
    reason: str | None  # why it was refused, e.g. "sensitive word: 赌博"
    masked: tuple[str, ...]  # kinds of personal data masked: mobile, id_card, email, bank_card
    # Listed words the context rule let through, each with its frame: "毒品 (opposes: 远离)".
    # On an allowed text, these are why it passed although it holds listed words.
    excused: tuple[Excuse, ...] = ()


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
        self._adverts = WordMatcher(
            advert_words(), self._table, self._lexicon, self._simplified, real_words=False
        )
        self._reloading = threading.Lock()
        signature = self._signature()
        self._matcher = self._compile()
        self._loaded: _Signature = signature
        self._failed: _Signature | None = None
        self.last_error: str | None = None
        self._public: PublicData | None = None

    @classmethod
    async def aload(cls, wordlists: Sequence[Path]) -> Moderator:
        """Construct in a worker thread; raises ModerationError like the constructor."""
        return await asyncio.to_thread(cls, wordlists)

    def __len__(self) -> int:
        """How many words are listed."""
        return len(self._matcher)

    def publish(self, public: PublicData) -> None:
        """What the union itself publishes (its sites' phones and addresses) from now on:
        read out as it is instead of being masked as a viewer's personal data."""
        self._public = public

    def screen(self, text: str) -> Screening:
        masked_text, kinds = mask_personal_data(text, self._public)
        finding = self._matcher.find(masked_text, contact=not CONTACT_KINDS.isdisjoint(kinds))
        bleep = _BLEEP if any(map(is_cjk, text)) else _BLEEP_LATIN
        spoken = _bleeped(masked_text, finding.quoted, self._simplified, bleep)
        if finding.hit is None:
            return Screening(True, spoken, None, kinds, finding.excused)
        return Screening(False, spoken, _reason(finding), kinds, finding.excused)

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
        return WordMatcher(words, self._table, self._lexicon, self._simplified, self._adverts)

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


def _bleeped(text: str, spans: Sequence[tuple[int, int]], simplified: CharMap, bleep: str) -> str:
    """``text`` with the characters behind each span of skeleton positions replaced by
    ``bleep``; overlapping spans (操你妈逼: 操你妈 and 你妈逼) make one bleep."""
    if not spans:
        return text
    slices = sorted(source_span(text, first, last, simplified) for first, last in spans)
    merged = [slices[0]]
    for start, end in slices[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    for start, end in reversed(merged):
        text = text[:start] + bleep + text[end:]
    return text


def _reason(finding: Finding) -> str:
    """The refusal: the word, "(by sound)", and the advert that overruled its frame."""
    assert finding.hit is not None
    reason = f"sensitive word: {finding.hit.word}" + (" (by sound)" if finding.hit.by_sound else "")
    if finding.overruled is None:
        return reason
    frame = f"{finding.overruled.stance.value}: {finding.overruled.frame}"
    if finding.advert == "contact":
        return f"{reason} ({frame}, but the text gives a contact)"
    return f"{reason} ({frame}, but the text advertises: {finding.advert})"
