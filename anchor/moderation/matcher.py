"""Finding listed words in a text, however they are spelled.

A text is read once (textview.py): folded to its skeleton, its Han characters grouped into
runs that may step over short insertions ("赌1博", "赌の博"), and the syllables each position
offers. A listed word is then found

- *as written*: a word of Han characters in a Han run; any other word (Latin letters, digits,
  "K粉") in the skeleton, where a word that starts with a Latin letter or digit must start a
  Latin word of the text, so "this hit" does not contain "shit" (its end is free, so
  "fucking" still contains "fuck", except for words of three letters or fewer, which must
  be whole words: "tmd" is not in "tmdb");
- *by sound*, for a Han word of two or more syllables: typed pinyin, alone or mixed with the
  word's own characters ("du bo", "du3bo2", "堵bo" for ~赌博, "约pao" for 约炮). Other Han
  characters of the same sound ("堵博") count only for a word listed as ``~word``, because
  the sound-alikes of most words are ordinary words (约跑, 卖银饰, 落袋为安). One-syllable
  words are never matched by sound, and ``=word`` never is.

A match is then dropped when an exemption (``!word``) covers it, or when the words around it
show the characters are not the listed word (guard.py): cut across two innocent words
(特色|情况), made of real words (大妈 for da ma), cut by a pause between clauses (收购，银行卡)
or a possessive (同事|他妈的|退休金). What is left is the listed word; it is let through
only when its list allows the context rule and the words around it make the speaker its
opposer, victim or asker (context.py: 远离毒品, 老板让我开假发票怎么办), in a text that
advertises nothing (the advert words are found by a matcher of their own, however spelled).
An insult let through as quoted is reported with its positions, so it can be bleeped.

Candidates are looked up by first character or first syllable, and a cut into words is made
only around a candidate, so screening a 200-character question against a few hundred words
takes well under a millisecond (benchmarks/bench_moderation.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from anchor.moderation import context, guard
from anchor.moderation.context import Excuse
from anchor.moderation.folding import CharMap, is_cjk, is_latin_or_digit, skeleton
from anchor.moderation.lexicon import Lexicon
from anchor.moderation.pinyin import PinyinTable
from anchor.moderation.textview import Step, TextView
from anchor.moderation.wordlist import Context, ListedWord

_CONTEXT = 8  # characters either side of a match that the cut into words looks at
# The count a listed word gets in the cut when the dictionary does not know it (裸聊, 约炮):
# an everyday word's, so it neither always wins nor always loses against its neighbours.
_LISTED_COUNT = 100

# Latin words this short are matched as whole words: as a prefix they start too many
# innocent ones ("tmd" in "tmdb").
_SHORT_LATIN = 3

_Path = tuple[tuple[int, str | None], ...]  # per syllable: position, Han character or None
_Covered = Callable[[int, int], bool]  # whether an exemption covers these positions


@dataclass(frozen=True, slots=True)
class Hit:
    """A listed word found in a text."""

    word: str  # as written in the list
    by_sound: bool
    first: int  # skeleton positions of its first and last character
    last: int
    context: Context = Context.NONE  # what the context rule may read around it


@dataclass(frozen=True, slots=True)
class Finding:
    """What `WordMatcher.find` made of a text."""

    hit: Hit | None  # the first listed word nothing excuses: the text is refused
    excused: tuple[Excuse, ...] = ()  # listed words the context rule let through
    # When ``hit`` stood in a frame that an advert overruled: that frame, and the advert word
    # (or "contact" for a phone number or account the text gives).
    overruled: Excuse | None = None
    advert: str | None = None
    # Skeleton positions (first, last) of the insults let through as quoted (他骂我傻逼):
    # allowed in the question, but not to be aired as written.
    quoted: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class _Spelling:
    letters: str  # the word's skeleton
    word: str
    han: bool  # Han characters only: found in Han runs
    starts_latin: bool  # must begin where a Latin word of the text begins
    whole: bool  # a short Latin word ("cnm", "wtf"): must also end where a Latin word ends
    context: Context = Context.NONE


@dataclass(frozen=True, slots=True)
class _Index:
    """Spellings by first character: Han words (found in Han runs) and the others."""

    han: dict[str, list[_Spelling]] = field(default_factory=lambda: defaultdict(list))
    other: dict[str, list[_Spelling]] = field(default_factory=lambda: defaultdict(list))

    def add(self, spelling: _Spelling) -> None:
        (self.han if spelling.han else self.other)[spelling.letters[0]].append(spelling)


@dataclass(frozen=True, slots=True)
class _Sound:
    syllables: tuple[str, ...]
    letters: str  # the word's characters, one per syllable
    word: str
    homophones: bool  # other characters of the same sound count
    context: Context


@dataclass(frozen=True, slots=True)
class _Found:
    first: int  # skeleton positions of the first and last character
    last: int
    spelling: _Spelling
    run: int | None  # the Han run and offset, for a Han word
    offset: int


class WordMatcher:
    """The compiled form of a set of word lists. Immutable; safe to use from any thread.

    ``adverts``, compiled from `context.advert_words` (once: it does not change with the
    lists), is what tells an advert; without it the context rule lets nothing through. That
    matcher is built with ``real_words=False``: a sound-alike is an advert word even when it
    makes a real word (加威信 for 加微信), since it only ever takes an excuse away.
    """

    def __init__(
        self,
        words: Iterable[ListedWord],
        table: PinyinTable,
        lexicon: Lexicon,
        simplified: CharMap,
        adverts: WordMatcher | None = None,
        *,
        real_words: bool = True,
    ) -> None:
        self._adverts = adverts
        self._real_words = real_words  # a sound-alike made of real words is excused
        self._table = table
        self._lexicon = lexicon
        self._simplified = simplified
        self._spellings = _Index()
        self._exempt = _Index()
        self._sounds: dict[str, list[_Sound]] = defaultdict(list)
        self._homophones: dict[str, list[_Sound]] = defaultdict(list)
        self._listed_counts: dict[str, int] = {}
        self._count = 0
        for listed in words:
            letters = skeleton(listed.text, simplified)
            han = all(map(is_cjk, letters))
            latin = is_latin_or_digit(letters[0])
            whole = latin and len(letters) <= _SHORT_LATIN and all(map(is_latin_or_digit, letters))
            spelling = _Spelling(letters, listed.text, han, latin, whole, listed.context)
            if han:
                self._listed_counts[letters] = max(lexicon.count(letters), _LISTED_COUNT)
            if listed.exempt:
                self._exempt.add(spelling)
                continue
            self._spellings.add(spelling)
            self._count += 1
            if listed.by_sound and han and len(letters) >= 2:
                for syllables in table.word_readings(letters):
                    sound = _Sound(
                        syllables, letters, listed.text, listed.by_homophone, listed.context
                    )
                    self._sounds[syllables[0]].append(sound)
                    if sound.homophones:
                        self._homophones[syllables[0]].append(sound)

    def __len__(self) -> int:
        """How many words (not exemptions) are listed."""
        return self._count

    def find(self, text: str, *, contact: bool = False) -> Finding:
        """The first listed word in ``text`` that nothing excuses, and the words the context
        rule let through before it. ``contact``: the text gave a phone number or an account
        (masked), which makes it an advert."""
        view = TextView(text, self._simplified, self._table)
        if not view.letters:
            return Finding(None)
        spelled = self._spelled(view, self._spellings)
        excused: list[Excuse] = []
        quoted: list[tuple[int, int]] = []
        advert: str | None = "contact" if contact else None
        advert_read = contact
        previous: tuple[int, int, Excuse] | None = None
        for hit in self._hits(view, spelled):
            found = self._framed(view, hit, previous)
            if found is None:
                return Finding(hit, tuple(excused), quoted=tuple(quoted))
            if not advert_read:
                advert, advert_read = self._advert(view, spelled), True
            if advert is not None:
                return Finding(hit, tuple(excused), found, advert, tuple(quoted))
            previous = (hit.first, hit.last, found)
            if found not in excused:
                excused.append(found)
            if hit.context is Context.QUOTED:
                quoted.append((hit.first, hit.last))
        return Finding(None, tuple(excused), quoted=tuple(quoted))

    def _hits(self, view: TextView, spelled: list[_Found] | None = None) -> Iterator[Hit]:
        """Every listed word of the text that no exemption and no reading of guard.py
        excuses: those written out first, in text order, then those matched by sound.
        ``spelled``: the listed words as written, if `_spelled` has found them already."""
        exempt: list[tuple[int, int]] | None = None

        def covered(first: int, last: int) -> bool:
            nonlocal exempt
            if exempt is None:
                exempt = [(f.first, f.last) for f in self._spelled(view, self._exempt)]
            return any(low <= first and last <= high for low, high in exempt)

        if spelled is None:
            spelled = self._spelled(view, self._spellings)
        for found in spelled:
            if covered(found.first, found.last):
                continue
            if found.run is not None and self._excused_as_written(view, found):
                continue
            spelling = found.spelling
            yield Hit(spelling.word, False, found.first, found.last, spelling.context)
        index = self._sounds if view.has_pinyin else self._homophones
        starts = [i for i, reading in enumerate(view.readings) if reading in index]
        for begin in sorted([*starts, *view.latin]):
            for sound in _candidates(view.options(begin), index):
                for path, end in _paths(view, begin, sound.syllables):
                    if self._counts_by_sound(view, sound, path, end, covered):
                        yield Hit(sound.word, True, path[0][0], end - 1, sound.context)

    def _framed(
        self, view: TextView, hit: Hit, previous: tuple[int, int, Excuse] | None
    ) -> Excuse | None:
        """The frame the context rule finds around ``hit``, if its list allows the rule."""
        if self._adverts is None or hit.context is Context.NONE:
            return None
        found = context.frame(
            view.letters,
            view.clause_ends,
            hit.first,
            hit.last,
            hit.context,
            previous,
            view.enumerations,
        )
        return None if found is None else Excuse(hit.word, *found)

    def _advert(self, view: TextView, spelled: list[_Found]) -> str | None:
        """The first advert word of the text that is not part of a listed word as written
        (``spelled``: 出售 in 出售银行卡 is not an offer of its own), or None."""
        if self._adverts is None:
            return None
        listed = [(f.first, f.last) for f in spelled]
        for hit in self._adverts._hits(view):
            if not any(low <= hit.first and hit.last <= high for low, high in listed):
                return hit.word
        return None

    def _spelled(self, view: TextView, index: _Index) -> list[_Found]:
        """Every occurrence of the words of ``index`` as written, in text order."""
        found: list[_Found] = []
        for number, run in enumerate(view.runs):
            for offset, char in enumerate(run.text):
                for spelling in index.han.get(char, ()):
                    if run.text.startswith(spelling.letters, offset):
                        last = run.positions[offset + len(spelling.letters) - 1]
                        found.append(_Found(run.positions[offset], last, spelling, number, offset))
        letters = view.letters
        for i, char in enumerate(letters if index.other else ()):
            for spelling in index.other.get(char, ()):
                if spelling.starts_latin and not view.starts[i]:
                    continue
                end = i + len(spelling.letters)
                if not letters.startswith(spelling.letters, i):
                    continue
                if spelling.whole and end < len(letters) and _goes_on(view, end):
                    continue
                found.append(_Found(i, end - 1, spelling, None, 0))
        found.sort(key=lambda f: (f.first, -f.last))
        return found

    def _excused_as_written(self, view: TextView, found: _Found) -> bool:
        """Whether the words around a Han word as written show it is not that word."""
        assert found.run is not None
        run = view.runs[found.run]
        begin, end = found.offset, found.offset + len(found.spelling.letters)
        if view.pauses and guard.across_pause(run.positions[begin:end], view.pauses):
            return True
        text = run.text
        low, window, spans = self._cut(text, begin, end)
        at, to = begin - low, end - low
        return any(
            reading(window, spans, at, to, self._innocent)
            for reading in (guard.split_across_words, guard.possessive)
        )

    def _counts_by_sound(
        self,
        view: TextView,
        sound: _Sound,
        path: _Path,
        end: int,
        covered: _Covered,
    ) -> bool:
        typed = any(char is None for _, char in path)
        replaced = [
            position
            for k, (position, char) in enumerate(path)
            if char is not None and char != sound.letters[k]
        ]
        if not (typed or replaced):
            return False  # the word as written: judged as written
        if replaced and not sound.homophones:
            return False
        if all(char is None and view.word_start(at) in view.capitalized for at, char in path):
            return False  # a name in pinyin: "Wang Du", "Du Fan"
        if covered(path[0][0], end - 1):
            return False
        return not (replaced and self._real_words and self._among_words(view, path, replaced))

    def _among_words(self, view: TextView, path: _Path, replaced: list[int]) -> bool:
        """Whether a match by sound is made of real words (guard.among_words): 病毒 and
        特色|请 are, 扎金花 is not (金花 is the listed word's own)."""
        by_run: dict[int, list[int]] = defaultdict(list)
        for position, char in path:
            if char is not None:
                run, offset = view.run_at[position]
                by_run[run].append(offset)
        for run, offsets in by_run.items():
            text = view.runs[run].text
            begin, end = min(offsets), max(offsets) + 1
            if text[begin:end] in self._lexicon:
                return True
            low, window, spans = self._cut(text, begin, end)
            others = [view.run_at[p][1] - low for p in replaced if view.run_at[p][0] == run]
            if guard.among_words(window, spans, begin - low, end - low, others, self._innocent):
                return True
        return False

    def _cut(self, text: str, begin: int, end: int) -> tuple[int, str, list[tuple[int, int]]]:
        """The text around ``text[begin:end]``, where it starts, and its cut into words."""
        low = max(0, begin - _CONTEXT)
        window = text[low : end + _CONTEXT]
        return low, window, self._lexicon.segment(window, self._listed_counts)

    def _innocent(self, word: str) -> bool:
        """A common word that holds no listed word."""
        return word in self._lexicon and not any(
            word.startswith(spelling.letters, i)
            for i, char in enumerate(word)
            for spelling in self._spellings.han.get(char, ())
        )


def _goes_on(view: TextView, at: int) -> bool:
    """The Latin word that ends before ``at`` goes on: a letter or digit follows, no gap."""
    return not view.starts[at] and is_latin_or_digit(view.letters[at])


def _candidates(options: list[Step], index: Mapping[str, list[_Sound]]) -> Iterable[_Sound]:
    """The words whose first syllable a position offers, each once."""
    if len(options) == 1:
        return index.get(options[0][0], ())
    return {id(s): s for option in options for s in index.get(option[0], ())}.values()


def _paths(view: TextView, begin: int, syllables: tuple[str, ...]) -> Iterator[tuple[_Path, int]]:
    """Every way the syllables run from ``begin``, and the position after the last."""

    def walk(at: int, taken: _Path) -> Iterator[tuple[_Path, int]]:
        if len(taken) == len(syllables):
            yield taken, at
            return
        if at >= len(view.letters):
            return
        wanted = syllables[len(taken)]
        for syllable, following, char in view.options(at):
            if syllable == wanted:
                yield from walk(following, (*taken, (at, char)))

    return walk(begin, ())
