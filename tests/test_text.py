"""Sentence splitting, language detection and speech normalization, as the audience hears it."""

import pytest

from anchor.speech.text import (
    CJK_SENTENCE_LIMIT,
    LATIN_SENTENCE_LIMIT,
    detect_language,
    normalize_for_speech,
    split_sentences,
)


def test_chinese_text_is_cut_after_each_sentence_mark():
    text = "大家好，欢迎来到直播间。今天讲互助保障！有问题吗？请留言；谢谢……好的"
    assert split_sentences(text) == [
        "大家好，欢迎来到直播间。",
        "今天讲互助保障！",
        "有问题吗？",
        "请留言；",
        "谢谢……",
        "好的",
    ]


def test_closing_quote_stays_with_its_sentence():
    assert split_sentences("他说：“好的。”然后走了。") == ["他说：“好的。”", "然后走了。"]


def test_repeated_marks_stay_together():
    assert split_sentences("真的吗？！我不信。") == ["真的吗？！", "我不信。"]


def test_english_text_is_cut_at_sentence_marks():
    text = "Welcome to the channel. Ask us anything! Are you a member? Yes; join today"
    assert split_sentences(text) == [
        "Welcome to the channel.",
        "Ask us anything!",
        "Are you a member?",
        "Yes;",
        "join today",
    ]


def test_decimals_and_abbreviations_do_not_end_a_sentence():
    text = "Mr. Chen said the rate is 3.5 percent, e.g. for U.S. workers. Dr. Li agreed."
    assert split_sentences(text) == [
        "Mr. Chen said the rate is 3.5 percent, e.g. for U.S. workers.",
        "Dr. Li agreed.",
    ]


def test_no_before_a_number_is_an_abbreviation_but_a_final_no_ends_the_sentence():
    assert split_sentences("See No. 5 below. The answer is no. Thanks.") == [
        "See No. 5 below.",
        "The answer is no.",
        "Thanks.",
    ]


def test_numbers_and_web_addresses_inside_chinese_stay_whole():
    assert split_sentences("报销比例是3.5倍。访问www.acftu.org了解。") == [
        "报销比例是3.5倍。",
        "访问www.acftu.org了解。",
    ]


def test_chinese_with_english_words_is_one_sentence():
    assert split_sentences("我们用 WeChat App 报名，e.g. 扫码就行。") == [
        "我们用 WeChat App 报名，e.g. 扫码就行。"
    ]


def test_line_breaks_end_sentences_and_list_numbers_stay_with_their_item():
    assert split_sentences("需要带：\n1. 身份证\n2. 会员证\n\n") == [
        "需要带：",
        "1. 身份证",
        "2. 会员证",
    ]


def test_whitespace_is_stripped_and_empty_or_punctuation_only_pieces_dropped():
    assert split_sentences("   ") == []
    assert split_sentences("  你好。  。 ……\n\n 再见。 ") == ["你好。", "再见。"]


def test_long_chinese_sentence_is_cut_at_commas_within_the_limit():
    clause = "这是一个比较长的分句内容"
    text = "，".join([clause] * 8) + "。"
    pieces = split_sentences(text)
    assert len(pieces) == 2
    assert all(len(piece) <= CJK_SENTENCE_LIMIT for piece in pieces)
    assert all(piece.endswith(("，", "。")) for piece in pieces)
    assert "".join(pieces) == text


def test_long_chinese_sentence_without_commas_is_still_cut():
    pieces = split_sentences("长" * 130)
    assert [len(piece) for piece in pieces] == [60, 60, 10]


def test_long_english_sentence_is_cut_at_spaces_not_inside_words():
    text = " ".join(["word"] * 60) + "."
    pieces = split_sentences(text)
    assert len(pieces) == 2
    assert all(len(piece) <= LATIN_SENTENCE_LIMIT for piece in pieces)
    assert " ".join(pieces) == text


def test_thousands_separator_is_not_a_place_to_cut():
    text = "，".join(["补助金额为50,000元"] * 6) + "。"
    assert all("50,000元" in piece for piece in split_sentences(text))


@pytest.mark.parametrize(
    ("sentence", "language"),
    [
        ("大家好。", "zh"),
        ("欢迎使用 WeChat 小程序。", "zh"),
        ("Hello everyone.", "en"),
        ("12351", "en"),
        ("𠮷野家", "zh"),
    ],
)
def test_language_follows_the_presence_of_chinese_characters(sentence, language):
    assert detect_language(sentence) == language


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("拨打１２３５１热线", "拨打幺二三五幺热线"),
        ("拨打12351热线", "拨打幺二三五幺热线"),
        ("电话020-12345678", "电话零二零，幺二三四五六七八"),
        ("补助50000元", "补助五万元"),
        ("补助50,000元", "补助五万元"),
        ("￥100", "一百元"),
        ("提高3.5%", "提高百分之三点五"),
        ("气温35℃以上", "气温三十五摄氏度以上"),
        ("3-5个工作日", "三到五个工作日"),
        ("3~5天", "三到五天"),
        ("2024年", "二零二四年"),
        ("200元/月", "两百元每月"),
        ("#工会话题# 😀👍🏻", "工会话题"),
        ("请@工会小助手", "请 工会小助手"),
        ("第1条", "第一条"),
    ],
)
def test_chinese_is_written_the_way_it_should_be_read(written, spoken):
    assert normalize_for_speech(written, "zh") == spoken


def test_english_drops_emoji_and_converts_full_width_but_keeps_numbers():
    text = "Hello 😀 world ✅ #union ＡＢＣ１２ call 12351, 35℃"
    assert normalize_for_speech(text, "en") == "Hello world union ABC12 call 12351, 35°C"


@pytest.mark.parametrize(
    "text", ["拨打１２３５１热线，增长3.5%，2024年", "电话020-12345678", "Hi 😀 #tag"]
)
def test_normalizing_twice_changes_nothing(text):
    once = normalize_for_speech(text, detect_language(text))
    assert normalize_for_speech(once, detect_language(once)) == once


def test_text_of_only_symbols_normalizes_to_nothing():
    assert normalize_for_speech("😀 ★ ✅", "zh") == ""
