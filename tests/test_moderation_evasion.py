"""Sensitive words against evasion, and innocent words that look or sound like them: the
evaluation sets as a whole, the cases that once aired or were refused wrongly, and the parts
(folding, the cut into words, the readings that excuse a match) one by one."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchor.config import DEFAULT_WORDLISTS, ModerationConfig, load_config
from anchor.harness.moderation_sets import evaluate, percentile, read_cases
from anchor.moderation import Moderator, guard
from anchor.moderation.folding import read_skeleton, skeleton
from anchor.moderation.lexicon import Lexicon

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CATEGORIES = ("gambling", "fraud", "drugs", "pornography", "abuse")


@pytest.fixture(scope="module")
def moderator() -> Moderator:
    return Moderator([ROOT / path for path in DEFAULT_WORDLISTS])


# --- the evaluation sets -------------------------------------------------------------------


def test_the_evaluation_sets_are_caught_and_passed(moderator):
    evasive = read_cases(DATA / "moderation_evasive.txt")
    innocent = read_cases(DATA / "moderation_innocent.txt")
    help_seeking = read_cases(DATA / "moderation_help_seeking.txt")
    assert len(evasive) >= 100 and len(innocent) >= 100 and len(help_seeking) >= 60
    result = evaluate(moderator.screen, evasive, innocent)
    misses = [case.text for case in result.misses]
    refused = {case.text: reason for case, reason in result.false_positives}
    assert result.catch_rate >= 0.97, misses
    assert result.false_positive_rate <= 0.02, refused
    assert result.by_context == []  # innocent texts hold no listed word at all
    helped = evaluate(moderator.screen, [], help_seeking)
    refused = {case.text: reason for case, reason in helped.false_positives}
    assert helped.false_positive_rate <= 0.02, refused
    both = len(result.false_positives) + len(helped.false_positives)
    assert both / (result.innocent + helped.innocent) <= 0.02
    assert len(helped.by_context) == len(help_seeking) - len(helped.false_positives)


def test_the_help_seeking_set_covers_every_category_and_the_evasive_set_framed_adverts():
    help_seeking = read_cases(DATA / "moderation_help_seeking.txt")
    assert {case.kind for case in help_seeking} == set(CATEGORIES)
    framed = [c for c in read_cases(DATA / "moderation_evasive.txt") if c.kind == "framed-advert"]
    assert len(framed) >= 30


def test_every_evasion_technique_is_in_the_evasive_set():
    kinds = {case.kind for case in read_cases(DATA / "moderation_evasive.txt")}
    assert {
        "spacing", "symbols", "digits", "kana", "letters", "homoglyphs", "tone-pinyin",
        "full-width", "traditional", "sound-alike", "run-on", "invisible",
    } <= kinds  # fmt: skip


def test_a_malformed_case_line_is_named(tmp_path):
    cases = tmp_path / "cases.txt"
    cases.write_text("# comment\nspacing\t赌 博\nno tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cases\.txt:3"):
        read_cases(cases)


def test_escapes_in_cases_stand_for_characters(tmp_path):
    cases = tmp_path / "cases.txt"
    cases.write_text("invisible\t赌\\u200b博\ntag\t代\\U000e0041开\n", encoding="utf-8")
    assert [case.text for case in read_cases(cases)] == ["赌\u200b博", "代\U000e0041开"]


def test_percentile_is_nearest_rank():
    assert percentile([], 95) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 95) == 95.0


# --- what once aired, and what was refused wrongly ----------------------------------------


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("专业办假证件 加微信", "办假证"),  # a listed word running on into a longer one
        ("毒品种类齐全", "毒品"),
        ("裸聊天室", "裸聊"),
        ("高价收购银行卡号", "收购银行卡"),
        ("线上赌场所有游戏", "赌场"),
        ("六合彩票内幕", "六合彩"),
        ("赌\u3164博", "赌博"),  # Hangul filler
        ("赌\u115f博", "赌博"),
        ("赌\u1160博", "赌博"),
        ("赌\uffa0博", "赌博"),
        ("赌の博", "赌博"),  # kana inserted
        ("赌1博", "赌博"),  # a digit inserted
        ("赌a博", "赌博"),  # a letter inserted
        ("賭博", "赌博"),  # traditional characters
        ("рorn", "porn"),  # Cyrillic р
        ("ѕhit", "shit"),  # Cyrillic ѕ
        ("fυck", "fuck"),  # Greek upsilon
        ("ΒΙΤϹΗ", "bitch"),  # Greek capitals, lunate sigma
        ("ᴘᴏʀɴ", "porn"),  # small capitals
        ("fu\u0301ck", "fuck"),  # a combining accent
    ],
)
def test_evasions_that_aired_are_refused(moderator, text, word):
    assert moderator.screen(text).reason == f"sensitive word: {word}"


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("du3 bo2", "赌博"),  # tone-number pinyin
        ("du4bo2", "赌博"),
        ("xi1 du2", "吸毒"),
        ("yue pao", "约炮"),  # typed pinyin catches a word not listed with ~
        ("约pao", "约炮"),  # the word's own characters mixed with pinyin
        ("堵1博", "赌博"),  # sound-alike with an insertion
    ],
)
def test_pinyin_with_tones_and_mixed_spellings_are_refused_by_sound(moderator, text, word):
    assert moderator.screen(text).reason == f"sensitive word: {word} (by sound)"


@pytest.mark.parametrize(
    "text",
    [
        "约跑",  # sounds like 约炮
        "保洁班家政",  # ban jia zheng, like 办假证
        "卖银饰",  # mai yin, like 卖淫
        "落料工",  # luo liao, like 裸聊
        "落袋为安",  # luo dai, like 裸贷
        "博才中学",  # bo cai, like 博彩
        "同事他妈的退休金",  # a colleague's mother's pension
        "博物馆",
        "发票报销怎么办",
        "公司被收购，银行卡里的工资还会发吗？",  # a pause between clauses
        "周末加班白加了",  # bai jia le, like 百家乐
        "这道菜很有特色请大家品尝",  # 特色|请 sounds like se qing
        "劳动合同草拟吗",  # cao ni ma
        "我的tmdb账号",  # "tmd" only as a whole word
    ],
)
def test_innocent_look_alikes_pass(moderator, text):
    screening = moderator.screen(text)
    assert screening.allowed, screening.reason


@pytest.mark.parametrize(
    "text",
    ["他妈的，老板又不发工资", "这他妈的什么公司", "真他妈的烦", "老板他妈的不发工资"],
)
def test_the_oath_is_still_an_oath(moderator, text):
    assert moderator.screen(text).reason == "sensitive word: 他妈的"


def test_insertions_join_characters_only_when_short_and_not_a_quantity(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("赌博\n赌场\n", encoding="utf-8")
    moderator = Moderator([words])
    assert not moderator.screen("赌xyz博").allowed  # three inserted letters
    assert moderator.screen("赌four博").allowed  # four is a word of its own
    assert moderator.screen("打赌2场球赛").allowed  # a number and its counting word
    assert not moderator.screen("赌の场").allowed


# --- the word lists --------------------------------------------------------------------------


def test_the_default_config_loads_every_category_list_and_the_channel_list():
    names = [path.as_posix() for path in ModerationConfig().wordlists]
    assert names == [
        *(f"moderation/lists/{category}.txt" for category in CATEGORIES),
        "moderation/sensitive.txt",
    ]
    shipped = load_config(ROOT / "config.yaml").moderation.wordlists
    assert list(shipped) == [ROOT / name for name in names]


@pytest.mark.parametrize("category", CATEGORIES)
def test_each_category_list_is_a_starter_list_of_its_own(category):
    path = ROOT / "moderation" / "lists" / f"{category}.txt"
    head = " ".join(line.strip("# ") for line in path.read_text(encoding="utf-8").split("\n")[:3])
    assert "starter list written for the anchor project" in head
    assert len(Moderator([path])) >= 15


def test_a_word_listed_with_tilde_is_matched_by_sound_alike_characters(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("~赌博\n约炮\n", encoding="utf-8")
    moderator = Moderator([words])
    assert moderator.screen("堵博").reason == "sensitive word: 赌博 (by sound)"
    assert moderator.screen("约跑").allowed  # not ~: other characters do not count
    assert moderator.screen("yue pao").reason == "sensitive word: 约炮 (by sound)"


# --- the parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "invisible",
    [
        "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e",  # Cf
        "\u202e", "\U000e0041",  # bidi override, tag character
        "\u0301", "\u034f", "\ufe0f", "\U000e0100",  # Mn: marks, variation selectors
        "\u3000", "\u202f", "\u2028", "\u2029",  # Zs, Zl, Zp
        "\u3164", "\u115f", "\u1160", "\uffa0",  # Hangul fillers (Lo)
        "\u2800",  # braille blank
    ],
)  # fmt: skip
def test_invisible_characters_fold_to_nothing(invisible):
    assert skeleton(f"赌{invisible}博") == "赌博"


def test_look_alike_letters_fold_to_latin():
    assert skeleton("рorn ѕhit fυck ΒΙΤϹΗ ᴘᴏʀɴ ｆｕｃｋ 𝐟𝐮𝐜𝐤 ⓕⓤⓒⓚ") == (
        "pornshitfuckbitchpornfuckfuckfuck"
    )


def test_pauses_are_remembered_where_clauses_end():
    read = read_skeleton("收购，银行卡 不是 a.b")
    assert read.letters == "收购银行卡不是ab"
    assert read.pauses == {2, 8}


def test_capitalized_latin_words_are_remembered():
    read = read_skeleton("Wang Du WANG du Ｗang")
    assert read.letters == "wangduwangduwang"
    assert read.capitalized == {0, 4, 12}


def test_the_cut_into_words_follows_word_frequencies():
    lexicon = Lexicon({"特色": 8000, "情况": 30000, "色情": 300, "特": 5000, "况": 900})
    assert lexicon.segment("特色情况", {}) == [(0, 2), (2, 4)]
    assert "特色" in lexicon and "特" not in lexicon  # single characters are never common
    assert lexicon.segment("裸聊天", {"裸聊": 100}) in ([(0, 2), (2, 3)], [(0, 1), (1, 2), (2, 3)])


def _always(word: str) -> bool:
    return True


def test_a_match_split_between_two_words_reaching_beyond_it_is_excused():
    assert guard.split_across_words("特色情况", [(0, 2), (2, 4)], 1, 3, _always)
    assert not guard.split_across_words("裸聊天室", [(0, 1), (1, 4)], 0, 2, _always)
    assert not guard.split_across_words("毒品种类", [(0, 2), (2, 4)], 0, 2, _always)


def test_a_sound_alike_among_words_is_excused_but_not_by_the_words_own_characters():
    # 病毒 (bing du) for 冰毒: the replaced 病 is in a word
    assert guard.among_words("新冠病毒", [(0, 2), (2, 4)], 2, 4, [2], _always)
    # 扎金花 for 炸金花: 金花 is the listed word's own, inside the match
    assert not guard.among_words("扎金花", [(0, 1), (1, 3)], 0, 3, [0], _always)
    # 特色请 for 色情: 特色 reaches beyond the match
    assert guard.among_words("特色请", [(0, 2), (2, 3)], 1, 3, [2], _always)


def test_an_oath_between_two_words_reads_as_a_possessive():
    spans = [(0, 2), (2, 5), (5, 8)]
    assert guard.possessive("同事他妈的退休金", spans, 2, 5, _always)
    assert not guard.possessive("真他妈的烦", [(0, 1), (1, 4), (4, 5)], 1, 4, _always)


def test_pauses_excuse_a_phrase_only_between_words_of_two_characters():
    assert guard.across_pause([0, 1, 2, 3, 4], {2})  # 收购，银行卡
    assert not guard.across_pause([0, 1, 2, 3, 4], {1, 2, 3, 4})  # 收，购，银，行，卡
    assert not guard.across_pause([0, 1], {1})  # 赌，博
