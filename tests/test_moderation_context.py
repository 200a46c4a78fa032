"""The context rule: a listed word its speaker opposes, reports, suffers, asks about or (for
an insult) quotes is let through, in a text that offers nothing; the rule per hit, its
frames, the adverts that overrule it, the ``%context`` line of a list, and what an operator
sees of it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from anchor.config import Config, QuestionsConfig
from anchor.harness.moderation_sets import read_cases
from anchor.moderation import NEAR_DUPLICATE, Excuse, ModerationError, Moderator, similarity
from anchor.moderation.context import Stance, frame
from anchor.moderation.folding import read_skeleton, simplified_chinese
from anchor.moderation.lexicon import Lexicon
from anchor.moderation.matcher import WordMatcher
from anchor.moderation.pinyin import PinyinTable
from anchor.moderation.wordlist import Context, read_wordlist
from anchor.questions.desk import QuestionDesk
from anchor.questions.reception import Reception
from anchor.store import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def moderator() -> Moderator:
    return Moderator(Config.default(ROOT).moderation.wordlists)


# --- what a union channel must take, and what it must still refuse ----------------------


@pytest.mark.parametrize(
    ("text", "excused"),
    [
        ("远离毒品珍爱生命", "毒品 (opposes: 远离)"),
        ("怎么举报毒品交易", "毒品 (opposes: 举报)"),
        ("举报赌博打什么电话", "赌博 (opposes: 举报)"),
        ("远离赌博", "赌博 (opposes: 远离)"),
        ("老板让我开假发票怎么办", "假发票 (victim: 让我)"),
        ("同事吸毒要不要报告", "吸毒 (asks: 报告)"),
        ("工友网赌欠了钱怎么办", "网赌 (victim: 欠了)"),
        ("遇到裸聊敲诈怎么办", "裸聊 (victim: 遇到)"),
        ("他骂我傻逼我能告他吗", "傻逼 (quotes: 骂)"),
        ("公司让我办假证件上岗违法吗", "办假证 (victim: 让我)"),
    ],
)
def test_questions_and_talking_points_against_a_listed_word_pass(moderator, text, excused):
    screening = moderator.screen(text)
    assert screening.allowed, screening.reason
    assert excused in [str(excuse) for excuse in screening.excused]
    assert screening.text == text.replace("傻逼", "[脏话]")  # only a quoted insult is bleeped


@pytest.mark.parametrize(
    "text",
    [
        "专业办假证件 加微信",
        "代开发票",
        "网赌平台稳赚",
        "出售冰毒",
        "裸聊加我",
        "六合彩内幕",
        "远离毒品，约炮吗",  # each hit needs its own frame
        "远离贫穷赌博致富",  # only small words between a frame and the hit
        "不要错过六合彩",
        "拒绝无聊，约炮走起",  # a frame does not reach across a pause
        "要不要一起玩赌博",  # 要不要 asks; it does not oppose
        "特别赌博",  # 特别 is not 别
        "不举报赌博",  # a negated frame
        "网赌不违法",  # a negated verdict
        "六合彩不是骗局",
        "毒品说不会上瘾",  # 说不 only at the end of a clause
        "网赌平台，怎么办理",  # 怎么办理 is not 怎么办
        "du bo远离毒品",  # a frame excuses no word before it, matched by sound or not
    ],
)
def test_adverts_and_texts_without_a_true_frame_are_still_refused(moderator, text):
    screening = moderator.screen(text)
    assert not screening.allowed
    assert screening.reason is not None and screening.reason.startswith("sensitive word:")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("远离毒品 加微信", "毒品 (opposes: 远离, but the text advertises: 微信)"),
        ("远离毒品 加 V 信", "毒品 (opposes: 远离, but the text advertises: 加v)"),
        ("远离毒品 jia wei xin", "毒品 (opposes: 远离, but the text advertises: 微信)"),
        ("远离毒品 加薇信", "毒品 (opposes: 远离, but the text advertises: 微信)"),
        ("远离毒品 加威信", "毒品 (opposes: 远离, but the text advertises: 微信)"),
        ("被网赌坑了？專業出黑", "网赌 (victim: 被, but the text advertises: 专业)"),
        ("戒掉网赌 私-聊-我", "网赌 (opposes: 戒掉, but the text advertises: 私聊)"),
        ("遇到裸聊敲诈怎么办 13800138000", "裸聊 (victim: 遇到, but the text gives a contact)"),
        ("他骂我傻逼，想报复的加我微信", "傻逼 (quotes: 骂, but the text advertises: 加我)"),
    ],
)
def test_an_advert_anywhere_overrules_every_frame_however_it_is_spelled(moderator, text, reason):
    assert moderator.screen(text).reason == f"sensitive word: {reason}"


def test_an_advert_word_inside_a_listed_word_is_that_word(moderator):
    screening = moderator.screen("举报出售银行卡的人")
    assert screening.allowed, screening.reason
    assert [str(e) for e in screening.excused] == ["出售银行卡 (opposes: 举报)"]


@pytest.mark.parametrize(
    "text", ["别他妈的烦我", "远离傻逼", "举报这个傻逼主播", "我骂你傻逼", "你个傻逼怎么办"]
)
def test_an_insult_passes_only_quoted_as_what_someone_was_called(moderator, text):
    assert not moderator.screen(text).allowed


@pytest.mark.parametrize(
    ("text", "excused"),
    [
        ("举报卖淫嫖娼打什么电话", ["卖淫 (opposes: 举报)", "嫖娼 (opposes: 举报)"]),
        ("警惕笑气和神仙水", ["笑气 (opposes: 警惕)", "神仙水 (opposes: 警惕)"]),
        ("老板说我是废物、王八蛋，这是侮辱吗？", ["王八蛋 (quotes: 说我)"]),
        ("吸毒的员工公司能直接辞退吗？", ["吸毒 (asks: 辞退)"]),
        ("对毒品说不", ["毒品 (opposes: 说不)"]),
    ],
)
def test_joined_words_enumerations_and_the_closing_question_share_a_frame(moderator, text, excused):
    screening = moderator.screen(text)
    assert screening.allowed, screening.reason
    assert [str(excuse) for excuse in screening.excused] == excused


# --- what goes on air -------------------------------------------------------------------


@pytest.fixture(scope="module")
def insults() -> WordMatcher:
    """The abuse list with no context rule (no advert matcher): every insult is a hit."""
    words = read_wordlist(ROOT / "moderation" / "lists" / "abuse.txt")
    return WordMatcher(words, PinyinTable(), Lexicon.common_chinese(), simplified_chinese())


ABUSE_QUESTIONS = [
    case.text
    for case in read_cases(ROOT / "tests" / "data" / "moderation_help_seeking.txt")
    if case.kind == "abuse"
]


@pytest.mark.parametrize("text", ABUSE_QUESTIONS)
def test_a_quoted_insult_passes_but_is_bleeped_in_what_goes_on_air(moderator, insults, text):
    screening = moderator.screen(text)
    assert screening.allowed, screening.reason
    assert insults.find(text).hit is not None and "[脏话]" in screening.text
    assert insults.find(screening.text).hit is None, screening.text


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("有朋友问：他骂我傻逼，我能告他吗？", "有朋友问：他骂我[脏话]，我能告他吗？"),
        ("他骂我傻 逼，我能告他吗？", "他骂我[脏话]，我能告他吗？"),
        ("他骂我傻*逼，我能告他吗？", "他骂我[脏话]，我能告他吗？"),
        ("他骂我shabi，我能告他吗？", "他骂我[脏话]，我能告他吗？"),
        ("被人辱骂“操你妈”，能报警吗？", "被人辱骂“[脏话]”，能报警吗？"),
        ("他骂我傻逼，打我13800138000", None),  # a contact: refused, not bleeped
    ],
)
def test_the_whole_spelling_of_a_quoted_insult_is_bleeped(moderator, text, spoken):
    screening = moderator.screen(text)
    if spoken is None:
        assert not screening.allowed
        return
    assert screening.allowed, screening.reason
    assert screening.text == spoken


def test_bleeping_and_masking_keep_each_other_in_place(moderator):
    card = "11010519491231002X"
    screening = moderator.screen(f"身份证{card}被他发到群里，还骂我傻 逼，身份证{card}，能告他吗？")
    assert screening.allowed, screening.reason
    assert screening.masked == ("id_card",)
    masked = "[身份证号]"
    assert screening.text == f"身份证{masked}被他发到群里，还骂我[脏话]，身份证{masked}，能告他吗？"


@pytest.mark.parametrize("text", ["远离毒品，珍爱生命", "工友网赌欠了钱怎么办？", "举报卖淫嫖娼"])
def test_words_excused_by_another_frame_are_said_as_written(moderator, text):
    screening = moderator.screen(text)
    assert screening.allowed, screening.reason
    assert screening.excused
    assert screening.text == text


# --- the frames, one by one -------------------------------------------------------------


def _frame(text: str, word: str, context: Context = Context.ANY) -> tuple[str, Stance] | None:
    read = read_skeleton(text)
    first = read.letters.index(word)
    clause_ends = read.pauses - read.enumerations
    last = first + len(word) - 1
    return frame(read.letters, clause_ends, first, last, context, None, read.enumerations)


def test_a_frame_before_the_hit_may_hold_up_to_three_small_words():
    assert _frame("远离毒品", "毒品") == ("远离", Stance.OPPOSES)
    assert _frame("举报同事吸毒", "吸毒") == ("举报", Stance.OPPOSES)
    assert _frame("被人拉进网赌群", "网赌") == ("被人", Stance.VICTIM)
    assert _frame("老板让我帮他开假发票", "假发票") == ("让我", Stance.VICTIM)  # 帮, 他, 开
    assert _frame("老板让我帮他们去开假发票", "假发票") is None  # four
    assert _frame("远离贫穷赌博", "赌博") is None


def test_a_frame_after_the_hit_must_be_near_and_not_negated():
    assert _frame("网赌欠了钱怎么办", "网赌") == ("欠了", Stance.VICTIM)
    assert _frame("同事吸毒，要不要报告", "吸毒") == ("报告", Stance.ASKS)
    assert _frame("赌博是违法的", "赌博") == ("违法", Stance.OPPOSES)
    assert _frame("赌博并不违法", "赌博") is None
    assert _frame("有摇头丸，在桌上很久了，该报警吗", "摇头丸") == ("报警", Stance.ASKS)  # ends it
    assert _frame("有摇头丸，在桌上很久了，该报警吗？谢谢", "摇头丸") is None  # too far otherwise


def test_a_list_says_what_the_rule_may_read():
    assert _frame("远离毒品", "毒品", Context.NONE) is None
    assert _frame("远离傻逼", "傻逼", Context.QUOTED) is None
    assert _frame("他骂我傻逼", "傻逼", Context.QUOTED) == ("骂", Stance.QUOTES)


def test_enumeration_commas_are_remembered_apart_from_clause_ends():
    read = read_skeleton("废物、王八蛋，走")
    assert read.pauses == {2, 5}
    assert read.enumerations == {2}


# --- the %context line -------------------------------------------------------------------


def test_a_list_without_a_context_line_is_enforced_as_handed_out(tmp_path):
    words = tmp_path / "platform.txt"
    words.write_text("赌博\n", encoding="utf-8")
    screening = Moderator([words]).screen("远离赌博")
    assert (screening.allowed, screening.reason) == (False, "sensitive word: 赌博")


def test_a_context_line_applies_to_the_words_after_it(tmp_path):
    words = tmp_path / "words.txt"
    lines = ["赌博", "%context any", "毒品", "%context quoted  # insults", "傻逼"]
    words.write_text("\n".join(lines), encoding="utf-8")
    assert [w.context for w in read_wordlist(words)] == [Context.NONE, Context.ANY, Context.QUOTED]
    moderator = Moderator([words])
    assert not moderator.screen("远离赌博").allowed
    assert moderator.screen("远离毒品").allowed
    assert not moderator.screen("远离傻逼").allowed
    assert moderator.screen("他骂我傻逼").allowed


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%context sometimes", r"words\.txt:2: .*one of none, any, quoted"),
        ("%include x", r"words\.txt:2: unknown directive"),
    ],
)
def test_a_bad_context_line_is_named_with_file_and_line(tmp_path, line, message):
    words = tmp_path / "words.txt"
    words.write_text(f"赌博\n{line}\n", encoding="utf-8")
    with pytest.raises(ModerationError, match=message):
        read_wordlist(words)


# --- what an operator sees ---------------------------------------------------------------


async def test_a_question_taken_by_the_context_rule_is_logged_and_an_overruled_one_says_why(
    tmp_path, caplog
):
    words = tmp_path / "words.txt"
    words.write_text("%context any\n网赌\n", encoding="utf-8")
    store = await Store.open(tmp_path / "anchor.db")
    desk = QuestionDesk(
        max_pending=5,
        max_age_s=600,
        merge_window_s=300,
        similarity=similarity,
        near_duplicate=NEAR_DUPLICATE,
    )
    reception = Reception(
        QuestionsConfig(),
        store=store,
        moderator=await Moderator.aload([words]),
        desk=desk,
        nudge=lambda: None,
        publish=lambda event: None,
    )

    async def ask(name: str, text: str) -> str:
        payload = {"id": name, "user": name, "text": text, "platform": "douyin"}
        return await reception.take_payload(json.dumps(payload, ensure_ascii=False).encode())

    caplog.set_level(logging.INFO, logger="anchor.questions.reception")
    assert await ask("q-help", "工友网赌欠了钱怎么办？") == "accepted"
    assert await ask("q-plain", "工会怎么入会？") == "accepted"
    assert await ask("q-advert", "戒掉网赌？稳赚平台加微信") == "rejected"
    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert "question q-help taken by the context rule: 网赌 (victim: 欠了)" in messages
    assert not any("q-plain" in message and "context" in message for message in messages)
    refused = await store.get("q-advert")
    assert refused is not None
    assert refused.reason == "sensitive word: 网赌 (opposes: 戒掉, but the text advertises: 稳赚)"
    await store.close()


def test_an_excuse_reads_as_word_stance_and_frame():
    assert str(Excuse("毒品", "远离", Stance.OPPOSES)) == "毒品 (opposes: 远离)"
