"""Moderation as a viewer and an operator see it: which texts are refused and why, what is
masked, who is slowed down, which questions count as the same one."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from anchor.config import DEFAULT_WORDLISTS
from anchor.moderation import (
    NEAR_DUPLICATE,
    ModerationError,
    Moderator,
    RateLimiter,
    mask_personal_data,
    normalize_question,
    similarity,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_LISTS = [ROOT / path for path in DEFAULT_WORDLISTS]
DEMO_SCHEDULE = ROOT / "schedules" / "union-demo.yaml"
UNION_FAQ = ROOT / "knowledge" / "union-faq.yaml"


@pytest.fixture(scope="module")
def moderator() -> Moderator:
    return Moderator(SHIPPED_LISTS)


def _id_number(first17: str) -> str:
    """An 18-digit ID number with its correct check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


def _luhn_number(body: str) -> str:
    """``body`` plus the digit that makes it pass the Luhn check."""
    for last in "0123456789":
        digits = body + last
        total = 0
        for position, char in enumerate(reversed(digits)):
            value = int(char) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


# --- sensitive words -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("有没有人一起去赌博", "赌博"),  # plain
        ("赌 博网站", "赌博"),  # space
        ("赌*博", "赌博"),  # symbol
        ("赌😀博", "赌博"),  # emoji
        ("赌\u200b博", "赌博"),  # zero-width space
        ("赌\u200d博", "赌博"),  # zero-width joiner
        ("出售Ｋ粉", "K粉"),  # full-width
        ("FUCK this", "fuck"),  # case
        ("ｆｕｃｋ", "fuck"),  # full-width Latin
        ("f u c k", "fuck"),  # spaced Latin
        ("what the fucking hell", "fuck"),  # an inflection still starts the word
        ("刷单返利，日结", "刷单返利"),
        ("他在吸毒品", "吸毒"),  # the common word 毒品 is listed itself: no excuse
        ("可以代 开 发 票", "代开发票"),
    ],
)
def test_listed_words_are_refused_however_spelled(moderator, text, word):
    screening = moderator.screen(text)
    assert not screening.allowed
    assert screening.reason == f"sensitive word: {word}"


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("堵博", "赌博"),  # Chinese homophone
        ("来玩堵搏", "赌博"),
        ("du bo", "赌博"),  # Latin pinyin, spaced
        ("dubo", "赌博"),  # Latin pinyin, joined
        ("DǓ BÓ", "赌博"),  # tone marks and capitals
        ("d-u-b-o", "赌博"),
        ("想 xi du 吗", "吸毒"),
        ("你个沙比", "傻逼"),
        ("shabi", "傻逼"),
        ("堵bo", "赌博"),  # half characters, half pinyin
    ],
)
def test_listed_words_are_refused_by_sound(moderator, text, word):
    screening = moderator.screen(text)
    assert not screening.allowed
    assert screening.reason == f"sensitive word: {word} (by sound)"


TYPICAL_QUESTIONS = [
    "在工地上受伤了，老板不给报工伤怎么办？",
    "工伤认定需要准备哪些材料？超过一年还能申请吗？",
    "下班路上出了交通事故算不算工伤？",
    "公司拖欠工资三个月了，去哪里投诉？",
    "老板跑路了，欠薪找谁要？被拖欠的工资可以申请劳动仲裁吗？",
    "没有签劳动合同，可以要求双倍工资吗？",
    "我是外卖骑手，可以加入工会吗？",
    "快递员怎么入会？需要交会费吗？入会以后有什么好处？",
    "单位没有工会，我想入会该找谁？",
    "网约车司机能不能参加职工互助保障？住院了怎么报销？",
    "12351热线几点上班？",
    "劳务派遣工和正式工同工同酬吗？",
    "工会代表自己的权益吗？",  # 代表+自己 sounds like biao zi
    "单位的规章制度常常变，合理吗？",  # 制度+常常 sounds like du chang
    "网络带来的兼职机会靠谱吗？",  # 网络+带来 sounds like luo dai
    "特色情况能不能特殊处理？",  # 特色+情况 holds 色情
    "我老婆她妈的医保怎么转过来？",  # sounds like ta ma de
    "我在读博，可以兼职吗？",  # du bo
    "新冠病毒感染算工伤吗？",  # bing du
    "保洁大妈的工资太低了",  # da ma
    "被老板打骂了可以报警吗？",  # da ma
    "工会组织的独唱比赛怎么报名？",  # du chang
    "远郊区县的职工怎么入会？",  # yuan jiao
    "我忘带身份证了，能办理入会吗？",
    "感谢主播，讲得真清楚！",
    "How can I join the trade union?",
    "My boss has not paid my salary for two months, what should I do?",
    "I hurt my hand at work, is this a work injury?",
    "Is this hit song played on the show?",
]


@pytest.mark.parametrize("text", TYPICAL_QUESTIONS)
def test_typical_union_questions_pass(moderator, text):
    screening = moderator.screen(text)
    assert screening.allowed, screening.reason
    assert screening.text == text
    assert screening.masked == ()


def _schedule_texts() -> list[str]:
    schedule = yaml.safe_load(DEMO_SCHEDULE.read_text(encoding="utf-8"))
    texts = [schedule["name"], *schedule["idle"]]
    for segment in schedule["segments"]:
        texts.append(segment["title"])
        texts.extend(p if isinstance(p, str) else p["text"] for p in segment["points"])
    return texts


def test_every_text_of_the_demo_schedule_passes_unchanged(moderator):
    texts = _schedule_texts()
    assert len(texts) > 40
    refused = {t: moderator.screen(t) for t in texts}
    assert {t: s.reason for t, s in refused.items() if not s.allowed} == {}
    assert [t for t, s in refused.items() if s.text != t] == []


def test_every_question_and_answer_of_the_union_faq_passes_unchanged(moderator):
    """Answers are screened sentence by sentence on air: none of the shipped ones may be held."""
    entries = yaml.safe_load(UNION_FAQ.read_text(encoding="utf-8"))["entries"]
    texts = [
        text
        for entry in entries
        for text in (entry["question"], *entry.get("alternates", ()), entry["answer"])
    ]
    assert len(texts) > 50
    screenings = {text: moderator.screen(text) for text in texts}
    assert {t: s.reason for t, s in screenings.items() if not s.allowed} == {}
    assert [t for t, s in screenings.items() if s.text != t] == []


def test_exemptions_and_spelling_only_words_come_from_the_list(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("~赌博\n=大麻\n!读博\n毒品\n", encoding="utf-8")
    moderator = Moderator([words])
    assert moderator.screen("我在读博").allowed  # exempt
    assert not moderator.screen("我在读博，也想去赌博").allowed  # the exemption covers 读博 only
    assert not moderator.screen("我想堵博").allowed  # ~: other characters of the same sound
    assert moderator.screen("独品").allowed  # without ~, only typed pinyin counts by sound
    assert not moderator.screen("du pin").allowed
    assert moderator.screen("da ma").allowed  # =大麻: never by sound
    assert not moderator.screen("大 麻").allowed


def test_several_lists_combine(tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("# gambling\n赌博  # trailing comment\n\n", encoding="utf-8")
    second.write_text("\ufeff毒品\n", encoding="utf-8")  # a BOM, as Windows Notepad writes
    moderator = Moderator([first, second])
    assert len(moderator) == 2
    assert moderator.screen("赌博").reason == "sensitive word: 赌博"
    assert moderator.screen("毒品").reason == "sensitive word: 毒品"
    assert moderator.screen("gambling").allowed  # comments are not words


# --- word list errors and reloading ------------------------------------------------------


def test_a_missing_list_is_named(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(ModerationError, match=r"nope\.txt"):
        Moderator([missing])


def test_bad_bytes_are_named_with_file_and_line(tmp_path):
    broken = tmp_path / "broken.txt"
    broken.write_bytes("赌博\n毒品\n".encode() + b"\xff\xfe bad\n")
    with pytest.raises(ModerationError, match=r"broken\.txt:3: not valid UTF-8"):
        Moderator([broken])


def test_a_line_without_letters_is_named(tmp_path):
    odd = tmp_path / "odd.txt"
    odd.write_text("赌博\n***\n", encoding="utf-8")
    with pytest.raises(ModerationError, match=r"odd\.txt:2:"):
        Moderator([odd])


async def test_aload_builds_off_the_loop_and_reports_errors(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("赌博\n", encoding="utf-8")
    moderator = await Moderator.aload([words])
    assert not moderator.screen("赌博").allowed
    with pytest.raises(ModerationError, match="missing"):
        await Moderator.aload([tmp_path / "missing.txt"])


def test_edited_lists_are_reloaded_and_broken_edits_keep_the_old_ones(tmp_path, caplog):
    words = tmp_path / "words.txt"
    words.write_text("赌博\n", encoding="utf-8")
    moderator = Moderator([words])
    assert moderator.reload_if_changed() is False  # nothing changed

    words.write_text("赌博\n毒品\n", encoding="utf-8")
    assert moderator.reload_if_changed() is True
    assert not moderator.screen("毒品").allowed

    words.write_bytes(b"\xff broken\n")
    with caplog.at_level(logging.ERROR):
        assert moderator.reload_if_changed() is False
    assert "words.txt:1" in caplog.text
    assert "words.txt:1" in (moderator.last_error or "")
    assert not moderator.screen("毒品").allowed  # the previous lists stay in force
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert moderator.reload_if_changed() is False
    assert caplog.text == ""  # reported once per change, not on every question

    words.unlink()
    assert moderator.reload_if_changed() is False
    assert "words.txt" in (moderator.last_error or "")
    assert not moderator.screen("赌博").allowed

    words.write_text("色情\n", encoding="utf-8")
    assert moderator.reload_if_changed() is True
    assert moderator.last_error is None
    assert moderator.screen("赌博").allowed
    assert not moderator.screen("色情").allowed


# --- personal data -----------------------------------------------------------------------

ID_VALID = _id_number("44010619900101123")
ID_WITH_X = "11010519491231002X"
CARD_16 = _luhn_number("621700012345678")
CARD_19 = _luhn_number("622202123456789012")


@pytest.mark.parametrize(
    ("text", "masked_text", "kind"),
    [
        ("我的电话13800138000", "我的电话[手机号]", "mobile"),
        ("电话 138 0013 8000，谢谢", "电话 [手机号]，谢谢", "mobile"),
        ("手机 139-1234-5678", "手机 [手机号]", "mobile"),
        ("+86 138-0013-8000", "[手机号]", "mobile"),
        ("+8613800138000", "[手机号]", "mobile"),
        ("１３８００１３８０００", "[手机号]", "mobile"),
        ("电话13800138000 2人", "电话[手机号] 2人", "mobile"),
        (f"身份证{ID_VALID}", "身份证[身份证号]", "id_card"),
        (f"ID {ID_WITH_X}。", "ID [身份证号]。", "id_card"),
        (f"身份证 {ID_VALID[:6]} {ID_VALID[6:14]} {ID_VALID[14:]}", "身份证 [身份证号]", "id_card"),
        ("身份证号440106199001011230", "身份证号[身份证号]", "id_card"),  # a typo is still an ID
        (f"卡号{CARD_16}", "卡号[银行卡号]", "bank_card"),
        (
            f"卡号 {CARD_19[:4]} {CARD_19[4:8]} {CARD_19[8:12]} {CARD_19[12:16]} {CARD_19[16:]}",
            "卡号 [银行卡号]",
            "bank_card",
        ),  # fmt: skip
        ("邮箱 zhang.san@qq.com 谢谢", "邮箱 [邮箱] 谢谢", "email"),
        ("写信到worker_01@union.example.cn就行", "写信到[邮箱]就行", "email"),
    ],
)
def test_personal_data_is_masked(text, masked_text, kind):
    assert mask_personal_data(text) == (masked_text, (kind,))


@pytest.mark.parametrize(
    "text",
    [
        "拨打12351职工服务热线",
        "工资3000元，一共欠了12000元",
        "2024年5月1日入职",
        "2024-05-01 到 2024-06-30",
        "验证码是 123456",
        "订单号 1234567890123456",  # 16 digits that fail the Luhn check
        "工号 12345678901",  # 11 digits, but no mobile starts with 12
        "流水号 20240501123456789012345",  # a longer run is not searched for a number inside
        "高温补贴每月300元，7月到9月发放",
    ],
)
def test_look_alikes_are_not_masked(text):
    assert mask_personal_data(text) == (text, ())


def test_every_kind_in_one_text_is_masked_and_listed_in_order():
    text = f"我叫小王，邮箱wang@163.com，电话13912345678，卡号{CARD_16}，身份证{ID_VALID}"
    masked, kinds = mask_personal_data(text)
    assert masked == "我叫小王，邮箱[邮箱]，电话[手机号]，卡号[银行卡号]，身份证[身份证号]"
    assert kinds == ("email", "mobile", "bank_card", "id_card")


def test_screening_masks_but_does_not_refuse_for_personal_data(moderator):
    screening = moderator.screen("我的电话13800138000，工资被拖欠了怎么办？")
    assert screening.allowed
    assert screening.reason is None
    assert screening.text == "我的电话[手机号]，工资被拖欠了怎么办？"
    assert screening.masked == ("mobile",)


def test_a_refused_text_is_still_masked(moderator):
    screening = moderator.screen("赌博加我13800138000")
    assert not screening.allowed
    assert "13800138000" not in screening.text
    assert screening.masked == ("mobile",)


def test_personal_data_cannot_trip_a_word(moderator):
    assert moderator.screen("我的邮箱是dubo@qq.com").allowed


# --- rate limit --------------------------------------------------------------------------


def test_rate_limit_allows_limit_per_window_per_viewer():
    limiter = RateLimiter(3, 60.0)
    assert [limiter.allow("ann", t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow("bob", 3)  # another viewer is not affected
    assert not limiter.allow("ann", 59.9)
    assert limiter.allow("ann", 60.0)  # the question at t=0 has left the window
    assert not limiter.allow("ann", 60.5)
    assert limiter.allow("ann", 61.0)


def test_refused_attempts_do_not_extend_the_wait():
    limiter = RateLimiter(1, 10.0)
    assert limiter.allow("ann", 0)
    assert not any(limiter.allow("ann", t) for t in range(1, 10))
    assert limiter.allow("ann", 10)


def test_rate_limiter_memory_is_bounded_by_evicting_the_least_recent_viewer():
    limiter = RateLimiter(1, 60.0, max_viewers=100)
    for n in range(1000):
        assert limiter.allow(f"viewer-{n}", n / 100)
    assert len(limiter) == 100
    assert not limiter.allow("viewer-999", 10.0)  # recent viewers are still remembered
    assert limiter.allow("viewer-0", 10.0)  # the oldest was forgotten


def test_rate_limiter_rejects_nonsense_settings():
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(0, 60)
    with pytest.raises(ValueError, match="window"):
        RateLimiter(3, 0)
    with pytest.raises(ValueError, match="max_viewers"):
        RateLimiter(3, 60, max_viewers=0)


# --- near-duplicates ---------------------------------------------------------------------

SAME_QUESTION = [
    ("工伤怎么认定？", "请问主播，工伤怎么认定啊"),
    ("欠薪怎么办", "被欠薪了怎么办？"),
    ("工伤认定需要什么材料", "工伤认定要准备哪些材料"),
    ("外卖骑手可以加入工会吗", "外卖骑手能不能加入工会？"),
    ("怎么加入工会", "如何加入工会呢"),
    ("12351热线几点上班", "请问12351热线几点上班？"),
    ("主播，怎么申请互助保障理赔？", "互助保障理赔怎么申请"),
    ("老板不给加班费怎么办", "老板不给加班费，我该怎么办"),
    ("我的电话[手机号]，快递员怎么入会", "快递员如何入会？谢谢主播"),
    ("How can I join the union?", "how do I join the union"),
]
DIFFERENT_QUESTIONS = [
    ("工伤认定需要什么材料", "工伤赔偿需要什么材料"),
    ("怎么加入工会", "怎么退出工会"),
    ("工伤怎么认定", "欠薪怎么办"),
    ("外卖骑手可以加入工会吗", "外卖骑手受伤算工伤吗"),
    ("12351热线几点上班", "职工服务站几点开门"),
    ("产假有多少天", "年休假有多少天"),
    ("公司拖欠工资怎么办", "公司不交社保怎么办"),
    ("加班费怎么算", "加班可以调休吗"),
    ("How can I join the union?", "How can I leave the union?"),
    ("你好", "谢谢"),
]


@pytest.mark.parametrize(("a", "b"), SAME_QUESTION)
def test_rephrasings_are_near_duplicates(a, b):
    assert similarity(a, b) >= NEAR_DUPLICATE
    assert similarity(a, b) == similarity(b, a)


@pytest.mark.parametrize(("a", "b"), DIFFERENT_QUESTIONS)
def test_different_questions_are_not(a, b):
    assert similarity(a, b) < NEAR_DUPLICATE


def test_normalized_question_keeps_what_is_asked():
    assert normalize_question("请问主播，工伤怎么认定啊？？") == "工伤认定"
    assert normalize_question("ＨＯＷ do I join the UNION?!") == "joinunion"
    text = "工伤认定要准备哪些材料"
    assert normalize_question(normalize_question(text)) == normalize_question(text)


def test_similarity_bounds():
    assert similarity("工伤认定", "工伤认定") == 1.0
    assert similarity("工伤认定", "Hello") == 0.0
    assert similarity("请问？", "请问！") == 1.0  # nothing but frame words, same letters
    assert similarity("你好", "") == 0.0
