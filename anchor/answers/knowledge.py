"""The knowledge base: the questions union staff have answered, and its lexical lens.

Viewers type fast and loosely ("住院了互助金咋报", "老板不发工资咋整"), so the written
question is rarely what they send. The lexical lens looks at every phrasing of an entry
(its question, alternates and tags) through two views; ``retrieval`` combines it with
sentence embeddings and turns both into one calibrated score:

- words: jieba's search-mode tokens, so "劳动合同" also matches "合同";
- character bigrams of the Chinese text, which survive jieba's segmentation mistakes
  ("能入工会" cut as 能入/工会) and a viewer's typo (one wrong character spoils two
  bigrams, not the whole question).

Each lens is scored BM25-style, then normalised so one threshold means the same thing for
every knowledge base: a query's score against an entry is the share of the query's
information (the IDF weight of its terms) that the entry covers, where a term counts fully
when it appears once in an entry of average length, less in a long entry, and never more
than fully (BM25's saturation and length normalisation, capped at 1). A word the knowledge
base has never seen counts as much as its rarest known word, so a question about something
else ("今天天气怎么样") scores near 0, and a question fully covered by one entry near 1.
The two lenses are averaged; numbers and Latin words count in both, so English questions
and "12351是干嘛的" are judged on every word they have.

Filler words that say nothing about the topic (吗 呢 请问 怎么 我 ...; "the", "how" ...)
are dropped before scoring; question words that do tell topics apart (多久 哪些 谁 哪里)
are kept.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jieba
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from anchor.yamlsource import Loc, SourceError, load_yaml, validate

log = logging.getLogger(__name__)

_ENTRY_ID = re.compile(r"^[a-z0-9_-]+$")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

_K1 = 1.2
_B = 0.5  # milder than the usual 0.75: entries with more alternates are not worse matches
_WORD_WEIGHT = 0.5

_CHINESE_FILLER_TEXT = """
    的 地 得 了 着 过 吗 呢 吧 啊 呀 哦 哇 嘛 么 啦 哈 喔 噢 嗯 呗 咧 耶
    咋 啥 咋办 咋整 怎 怎么 怎么样 怎样 怎么办 如何 什么 为什么 干嘛 干啥 干什么
    请问 问 问问 问下 问一下 想问 一下 请 请教 谢谢 麻烦 你好 您好 主播 老师 大家 现在
    我 我们 你 你们 您 他 她 它 他们 她们 自己 咱 咱们 俺 人家
    是 有 在 和 跟 与 及 或 或者 还是 就 都 也 还 又 要 想 能 能不能 可以 可不可以 会 该
    是不是 有没有 行不行 给 把 被 让 对 从 向
    这 那 这个 那个 这些 那些 这样 那样 个 一个 些 一些
"""
_ENGLISH_FILLER_TEXT = """
    a an the is are am was were be been being do does did i me my we our us you your he she
    him his her it its they them their this that these those to of in on at for with from by
    and or but if can could would should will shall may might must how what please hi hello
    there any some get got have has had just about as so than then
"""
FILLER_WORDS = frozenset(_CHINESE_FILLER_TEXT.split()) | frozenset(_ENGLISH_FILLER_TEXT.split())


class KnowledgeError(SourceError):
    """A knowledge-base file is missing or invalid; every problem is listed with file:line."""


def _text(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _entry_id(value: str) -> str:
    if not _ENTRY_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid id: use lowercase letters, digits, - or _")
    return value


_Text = Annotated[str, AfterValidator(_text)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, coerce_numbers_to_str=True
    )


class Entry(_Model):
    """One answered question. ``id`` is stable: logs, the store and ``anchor ask`` name it."""

    id: Annotated[str, AfterValidator(_entry_id)]
    question: _Text
    alternates: tuple[_Text, ...] = ()
    answer: _Text
    tags: tuple[_Text, ...] = ()

    @field_validator("alternates", "tags", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        """``alternates:`` with every line commented out means none, not an error."""
        return () if value is None else value

    @property
    def phrasings(self) -> tuple[str, ...]:
        """Everything a viewer's question is compared with."""
        return (self.question, *self.alternates, *self.tags)


class _KnowledgeFile(_Model):
    entries: tuple[Entry, ...] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Hit:
    """An entry found for a question; ``score`` in [0, 1] (see the module docstring)."""

    entry: Entry
    score: float


class KnowledgeBase:
    """Entries plus their search index; immutable once built.

    Building it loads jieba's dictionary the first time (about a second of blocking work),
    so code on the event loop uses ``await KnowledgeBase.aload(path)``.
    """

    def __init__(
        self,
        entries: Iterable[Entry],
        *,
        source: Path | None = None,
        lines: Mapping[str, int] | None = None,
    ) -> None:
        self.entries: tuple[Entry, ...] = tuple(entries)
        self.source = source
        self.lines: Mapping[str, int] = dict(lines or {})  # entry id → its line in ``source``
        self._by_id = {entry.id: entry for entry in self.entries}
        if len(self._by_id) != len(self.entries):
            raise ValueError("entry ids must be unique")
        _prepare_jieba()
        analysed = [_analyse(" ".join(entry.phrasings)) for entry in self.entries]
        self._words = _Bm25([words for words, _ in analysed])
        self._characters = _Bm25([characters for _, characters in analysed])
        self._questions = [
            [frozenset(_analyse(text)[0]) for text in (entry.question, *entry.alternates)]
            for entry in self.entries
        ]

    @classmethod
    def load(cls, path: Path) -> KnowledgeBase:
        """Read and index a knowledge-base file; raise KnowledgeError listing every problem."""
        path = Path(path)
        try:
            doc = load_yaml(path)
            problems = list(_duplicates(doc.data))
            parsed = validate(_KnowledgeFile, doc, problems=problems)
        except SourceError as exc:
            raise KnowledgeError(exc.errors) from None
        lines = {
            entry.id: doc.line_of(("entries", index, "id"))
            for index, entry in enumerate(parsed.entries)
        }
        return cls(parsed.entries, source=path, lines=lines)

    @classmethod
    async def aload(cls, path: Path) -> KnowledgeBase:
        """``load`` in a worker thread, so the event loop keeps airing meanwhile."""
        return await asyncio.to_thread(cls.load, path)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._by_id)

    def get(self, entry_id: str) -> Entry:
        """The entry with ``entry_id`` (KeyError if there is none)."""
        return self._by_id[entry_id]

    def where(self, entry_id: str) -> str:
        """``file:line`` of an entry for messages to staff, or just its id when unknown."""
        line = self.lines.get(entry_id)
        if self.source is None or line is None:
            return entry_id
        return f"{self.source}:{line}"

    def coverage(self, text: str) -> list[float]:
        """The lexical lens's score of ``text`` against every entry, in entry order."""
        return self._coverage(_analyse(text))

    def _coverage(self, analysed: tuple[list[str], list[str]]) -> list[float]:
        words, characters = analysed
        scores = self._words.coverage(words)
        if characters:
            by_characters = self._characters.coverage(characters)
            scores = [
                _WORD_WEIGHT * w + (1 - _WORD_WEIGHT) * c
                for w, c in zip(scores, by_characters, strict=True)
            ]
        return scores

    def search(self, text: str, limit: int = 3) -> list[Hit]:
        """The best entries for ``text``, best first; only entries that share something.

        Entries that cover the question equally well (often all entries of one topic, for a
        short question such as "互助保障是啥") are ordered by how little their closest written
        question adds beyond what was asked, so the general entry wins over the specific ones.
        """
        analysed = _analyse(text)
        scores = self._coverage(analysed)
        asked = frozenset(analysed[0])
        candidates = [index for index, score in enumerate(scores) if score > 0]
        candidates.sort(
            key=lambda index: (round(scores[index], 9), self._closeness(index, asked)),
            reverse=True,
        )
        return [Hit(self.entries[index], scores[index]) for index in candidates[: max(limit, 0)]]

    def _closeness(self, index: int, asked: frozenset[str]) -> float:
        """The IDF share of the entry's closest written question that the viewer also asked."""
        best = 0.0
        for written in self._questions[index]:
            weight = sum(self._words.idf(term) for term in written)
            if weight > 0:
                shared = sum(self._words.idf(term) for term in written & asked)
                best = max(best, shared / weight)
        return best


class _Bm25:
    """One lens of the index: term frequencies per entry and document frequencies."""

    def __init__(self, documents: Sequence[Sequence[str]]) -> None:
        self._count = len(documents)
        self._lengths = [len(terms) for terms in documents]
        self._average = (sum(self._lengths) / self._count if self._count else 0) or 1.0
        self._postings: dict[str, list[tuple[int, int]]] = {}
        for index, terms in enumerate(documents):
            for term, frequency in Counter(terms).items():
                self._postings.setdefault(term, []).append((index, frequency))
        self._unknown_idf = self._idf(1)

    def _idf(self, document_frequency: int) -> float:
        n = self._count
        return math.log(1 + (n - document_frequency + 0.5) / (document_frequency + 0.5))

    def idf(self, term: str) -> float:
        """How telling ``term`` is; an unseen term counts as much as the rarest known one."""
        postings = self._postings.get(term)
        return self._idf(len(postings)) if postings else self._unknown_idf

    def coverage(self, query: Sequence[str]) -> list[float]:
        """Per entry, the IDF-weighted share of ``query``'s distinct terms it covers."""
        scores = [0.0] * self._count
        total = 0.0
        for term in set(query):
            idf = self.idf(term)
            total += idf
            postings = self._postings.get(term, ())
            for index, frequency in postings:
                norm = 1 - _B + _B * self._lengths[index] / self._average
                saturation = frequency * (_K1 + 1) / (frequency + _K1 * norm)
                scores[index] += idf * min(1.0, saturation)
        if total <= 0:
            return scores
        return [score / total for score in scores]


def _analyse(text: str) -> tuple[list[str], list[str]]:
    """The two lenses' terms for ``text``: words, and Chinese character bigrams.

    Words are jieba's search-mode tokens, fillers and punctuation dropped. Bigrams are taken
    within runs of kept words, so a dropped filler ("互助金咋报" without 咋) does not glue its
    neighbours into a bigram that means nothing. Numbers and Latin words (12351, "union")
    join the bigram lens whole, so a mixed question is not judged on its Chinese part alone.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    words = [token for token in jieba.lcut_for_search(text) if _is_content(token)]
    characters: list[str] = []
    run = ""
    for token in [*jieba.lcut(text), ""]:
        if _is_content(token) and _CJK_RUN.search(token):
            run += token
            continue
        characters.extend(run[i : i + 2] for i in range(len(run) - 1))
        run = ""
        if _is_content(token):
            characters.append(token.strip())
    return words, characters


def has_content(text: str) -> bool:
    """Whether ``text`` says anything beyond fillers and punctuation ("？！。", "请问")."""
    words, characters = _analyse(text)
    return bool(words or characters)


def _is_content(token: str) -> bool:
    token = token.strip()
    return bool(token) and token not in FILLER_WORDS and any(char.isalnum() for char in token)


def _duplicates(data: dict[str, Any]) -> Iterable[tuple[Loc, str]]:
    """Two entries with one id, or one question written under two entries (asking it could
    bring either answer)."""
    entries = data.get("entries")
    first_id: dict[str, int] = {}
    first_phrasing: dict[str, tuple[Loc, str]] = {}
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        entry_id = entry.get("id")
        if isinstance(entry_id, str):
            if entry_id in first_id:
                yield (
                    ("entries", index, "id"),
                    f"duplicate id {entry_id!r} (already used by entries.{first_id[entry_id]})",
                )
            else:
                first_id[entry_id] = index
        for loc, phrasing in _raw_phrasings(entry, index):
            key = unicodedata.normalize("NFKC", phrasing).strip().rstrip("?？!！。.").lower()
            first = first_phrasing.get(key)
            if first is not None and first[0][1] != index:
                yield loc, f"{phrasing!r} is already a question of entry {first[1]!r}"
            elif first is None and key:
                first_phrasing[key] = (loc, str(entry_id))


def _raw_phrasings(entry: dict[str, Any], index: int) -> Iterable[tuple[Loc, str]]:
    if isinstance(entry.get("question"), str):
        yield ("entries", index, "question"), entry["question"]
    alternates = entry.get("alternates")
    for position, alternate in enumerate(alternates if isinstance(alternates, list) else []):
        if isinstance(alternate, str):
            yield ("entries", index, "alternates", position), alternate


class _ToModuleLog(logging.Handler):
    """Hands jieba's records to this module's logger instead of jieba's own stderr printer."""

    def emit(self, record: logging.LogRecord) -> None:
        if log.isEnabledFor(record.levelno):
            log.handle(record)


def _prepare_jieba() -> None:
    """Load jieba's dictionary once (blocking), its start-up chatter going to our log."""
    jieba_log = jieba.default_logger
    jieba_log.removeHandler(jieba.log_console)
    if not any(isinstance(handler, _ToModuleLog) for handler in jieba_log.handlers):
        jieba_log.addHandler(_ToModuleLog())
    jieba_log.propagate = False
    jieba.initialize()
