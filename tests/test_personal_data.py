"""Personal data in every form viewers type it is masked, and numbers that are not personal
read as typed. The forms and sentences are data files (tests/data/), so a leak found on air
becomes one more line there."""

from __future__ import annotations

import pytest
from personal_data import innocent_sentences, personal_forms, spelled_digits, survives

from anchor.moderation import PLACEHOLDERS, mask_personal_data

FORMS = personal_forms()
INNOCENT = innocent_sentences()


def test_the_test_set_is_large_enough():
    assert len(FORMS) >= 80
    assert len(INNOCENT) >= 30


def test_no_secret_survives_masking():
    survivors = [
        (text, masked)
        for text, secret in FORMS
        if survives(secret, masked := mask_personal_data(text)[0])
    ]
    assert survivors == [], f"{len(survivors)} of {len(FORMS)} secrets survived"


def test_no_innocent_sentence_changes():
    changed = [
        (text, masked) for text in INNOCENT if (masked := mask_personal_data(text)[0]) != text
    ]
    assert changed == [], f"{len(changed)} of {len(INNOCENT)} innocent sentences changed"


def test_masking_a_masked_text_changes_nothing():
    for text, _ in FORMS:
        masked, _ = mask_personal_data(text)
        assert mask_personal_data(masked) == (masked, ()), text


def test_every_placeholder_is_used_by_the_test_set():
    kinds = {kind for text, _ in FORMS for kind in mask_personal_data(text)[1]}
    assert kinds == set(PLACEHOLDERS)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我的电话138.1234.5678，欠薪怎么办", "我的电话[手机号]，欠薪怎么办"),
        ("一三八一二三四五六七八", "[手机号]"),
        ("13800138000一直打不通", "[手机号]一直打不通"),
        ("+86 138-0013-8000", "[手机号]"),
        ("(020)12345678 找人事", "[电话] 找人事"),
        ("单位电话0760-88886666", "单位电话[电话]"),
        ("老身份证号430104690101123", "老身份证号[身份证号]"),
        ("邮箱：zhang＠qq。com", "邮箱：[邮箱]"),
        ("我的邮箱zhang at qq dot com", "我的邮箱[邮箱]"),
        ("加我QQ 12345678", "加我QQ [QQ号]"),
        ("vx: abc123", "vx: [微信号]"),
        ("微信 13912345678 同号", "微信 [手机号] 同号"),
        ("我住中山市东区兴中道8号3栋502室", "我住中山市东区[地址]"),
        ("本人李四，想咨询工伤", "本人[姓名]，想咨询工伤"),
        ("我叫小王，电话13800138000 2人", "我叫小王，电话[手机号] 2人"),
    ],
)
def test_placeholders_read_in_place_of_the_data(text, masked):
    assert mask_personal_data(text)[0] == masked


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("电话13800138000，座机020-12345678", ("mobile", "phone")),
        ("QQ 12345678 或 vx: abc123", ("qq", "wechat")),
        ("我叫张三，住兴中道8号", ("name", "address")),
    ],
)
def test_kinds_are_listed_in_order_of_appearance(text, kinds):
    assert mask_personal_data(text)[1] == kinds


def test_a_leak_is_seen_in_any_spelling():
    """The test's own yardstick: digits left behind count, whatever their form."""
    assert spelled_digits("一三八 ０013 8000") == "13800138000"
    assert survives("138.0013.8000", "电话138-0013-8000")
    assert survives("13800138000", "电话[手机号]13800138000")
    assert not survives("13800138000", "电话[手机号]")
