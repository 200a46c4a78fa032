"""When the characters of a listed word are not that word.

Chinese has no spaces, so the characters of a listed word turn up inside innocent text. Each
reading below is judged on the most probable cut of the text around the match into words
(lexicon.py), with the listed words themselves in the dictionary so that they compete with
the innocent words on equal terms. "Innocent word" means a common word that holds no listed
word: 毒品 excuses nothing, so "吸毒品" is still 吸毒.

- **Split across words.** The match is cut in two, between one innocent word that reaches
  back before it and one that reaches on after it: 特色|情况 holds 色情, 代表|自己 sounds like
  biao zi. A listed word that merely runs on into a longer word is not excused, because its
  first characters still stand alone: 办|假|证件, 毒品|种类, 裸|聊天室, 六合|彩票. (The guard
  this replaces excused a match whenever a common word crossed either end, and so let those
  through.)
- **Among words** (a match by sound through other characters). If the match is itself a
  common word, or its characters belong to innocent words of two or more characters that
  hold a replaced character or reach beyond the match, the text is made of real words, not
  of sound-alikes: 大妈 (da ma), 病毒 (bing du), 保洁|班|家政, 特色|请 (se qing). Evasions are
  strings of same-sounding characters that do not make words (堵博, 沙比); the listed word's
  own characters making a word inside the match (金花 in 扎金花) excuse nothing.
- **Across a pause.** Punctuation between clauses is dropped like any other symbol, so that
  "赌，博" is still 赌博, but pauses that cut a listed phrase into pieces of two or more
  characters each are where one clause ends and the next begins: 公司被收购，银行卡……
  does not offer to buy bank cards. Evasion puts the pauses between single characters.
- **Possessive.** A listed oath that ends in 的 reads as "someone's" when an innocent word
  stands right before it and another right after it: 同事|他妈的|退休金 is a colleague's
  mother's pension. The oath opens a sentence or has a one-character word on one side
  (他妈的，老板……; 真他妈的烦; 这他妈的什么; 老板他妈的不发), and stays refused.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

Spans = list[tuple[int, int]]
Innocent = Callable[[str], bool]


def split_across_words(text: str, spans: Spans, begin: int, end: int, innocent: Innocent) -> bool:
    """The match ``text[begin:end]`` is cut between two innocent words reaching beyond it."""
    overlapping = [(low, high) for low, high in spans if low < end and high > begin]
    if len(overlapping) != 2:
        return False
    (first_low, first_high), (second_low, second_high) = overlapping
    return (
        first_low < begin
        and second_high > end
        and innocent(text[first_low:first_high])
        and innocent(text[second_low:second_high])
    )


def among_words(
    text: str, spans: Spans, begin: int, end: int, replaced: Sequence[int], innocent: Innocent
) -> bool:
    """An innocent word of the cut holds a character of ``text[begin:end]`` and either
    reaches beyond the match or holds one of the ``replaced`` characters."""
    return any(
        high - low >= 2
        and (low < begin or high > end or any(low <= at < high for at in replaced))
        and innocent(text[low:high])
        for low, high in spans
        if low < end and high > begin
    )


def possessive(text: str, spans: Spans, begin: int, end: int, innocent: Innocent) -> bool:
    """``text[begin:end]`` ends in 的 and stands between two innocent words."""
    if not text[begin:end].endswith("的"):
        return False
    before = [(low, high) for low, high in spans if high == begin]
    after = [(low, high) for low, high in spans if low == end]
    return any(high - low >= 2 and innocent(text[low:high]) for low, high in before) and any(
        high - low >= 2 and innocent(text[low:high]) for low, high in after
    )


def across_pause(positions: Sequence[int], pauses: Collection[int]) -> bool:
    """Pauses cut the match (whose characters stand at ``positions`` of the skeleton) into
    pieces of two or more characters each."""
    cuts = [
        k
        for k, (before, after) in enumerate(zip(positions, positions[1:], strict=False), 1)
        if any(before < pause <= after for pause in pauses)
    ]
    edges = [0, *cuts, len(positions)]
    return bool(cuts) and all(high - low >= 2 for low, high in zip(edges, edges[1:], strict=False))
