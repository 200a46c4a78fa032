"""Parsing of viewer questions and operator commands exactly as a bridge would send them."""

import json

import pytest

from anchor.links.payloads import (
    MAX_SAY_CHARS,
    ControlCommand,
    RejectedInput,
    parse_control,
    parse_question,
)
from anchor.messages import Question

NOW = 1_778_300_000.0
LIMITS = {"max_bytes": 8192, "max_chars": 200, "now": NOW}


def payload(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode("utf-8")


def good(**overrides) -> bytes:
    fields = {"id": "dy-1001", "user": "小李", "text": "互助保障住院怎么申请理赔？"}
    fields.update(overrides)
    return payload(**{key: value for key, value in fields.items() if value is not ...})


def rejected(raw: bytes, **limits) -> RejectedInput:
    with pytest.raises(RejectedInput) as caught:
        parse_question(raw, **{**LIMITS, **limits})
    return caught.value


# -- questions that are accepted ---------------------------------------------------------------


def test_chinese_question_with_every_field():
    question = parse_question(
        good(platform="douyin", ts=1_778_299_990.5), max_bytes=8192, max_chars=200, now=NOW
    )
    assert question == Question(
        id="dy-1001",
        user="小李",
        text="互助保障住院怎么申请理赔？",
        platform="douyin",
        sent_at=1_778_299_990.5,
        received_at=NOW,
    )


def test_optional_fields_may_be_absent_or_null():
    absent = parse_question(good(), **LIMITS)
    null = parse_question(good(platform=None, ts=None), **LIMITS)
    assert absent.platform is None and absent.sent_at is None
    assert null.platform is None and null.sent_at is None


def test_unknown_keys_from_the_bridge_are_ignored():
    question = parse_question(good(avatar="https://x/y.png", badge={"level": 3}), **LIMITS)
    assert question.text == "互助保障住院怎么申请理赔？"


def test_whitespace_and_control_characters_are_cleaned_out_of_text():
    question = parse_question(
        good(text="  欠薪\n\n怎么\t办\u200b？\u202e ", user=" 小李 "), **LIMITS
    )
    assert question.text == "欠薪 怎么 办？"
    assert question.user == "小李"


def test_integer_timestamp_and_javascript_milliseconds():
    assert parse_question(good(ts=1_778_299_990), **LIMITS).sent_at == 1_778_299_990.0
    assert parse_question(good(ts=1_778_299_990_500), **LIMITS).sent_at == 1_778_299_990.5


def test_limit_counts_characters_not_bytes():
    text = "工" * 200  # 600 bytes of UTF-8
    assert parse_question(good(text=text), **LIMITS).text == text


def test_escaped_unicode_and_a_utf8_bom_are_accepted():
    raw = b'\xef\xbb\xbf{"id": "1", "user": "u", "text": "\\u5de5\\u4f1a"}'
    assert parse_question(raw, **LIMITS).text == "工会"


# -- questions that are rejected ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason", "named"),
    [
        (b"", "empty", "empty"),
        (b"   \n", "empty", "empty"),
        (b"hello", "not_json", "JSON"),
        (b'{"id": "1", "user": "u", "text": "t"', "not_json", "JSON"),
        (b'{"id": "1", "user": "u", "text": "t", "ts": NaN}', "not_json", "NaN"),
        (b'["id", "user", "text"]', "not_object", "array"),
        (b'"just text"', "not_object", "string"),
        (b"\xff\xfe{}", "bad_utf8", "UTF-8"),
        (b'{"id": "1", "user": "u", "text": "\xe5\xb7"}', "bad_utf8", "UTF-8"),
        (b'{"id": "1", "user": "u", "text": "a\x00b"}', "binary", "0x00"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary", "control byte"),
    ],
)
def test_malformed_payloads(raw, reason, named):
    error = rejected(raw)
    assert error.reason == reason
    assert named in error.detail


def test_deeply_nested_json_is_refused_not_a_crash():
    error = rejected(b"[" * 100_000 + b"]" * 100_000, max_bytes=1_048_576)
    assert error.reason == "not_json"


def test_huge_payload_is_refused_before_decoding():
    error = rejected(b"\xff" * 10_000, max_bytes=8192)  # not UTF-8 either: size wins
    assert error.reason == "too_large"
    assert "10000" in error.detail and "8192" in error.detail


@pytest.mark.parametrize("field", ["id", "user", "text"])
def test_missing_required_field(field):
    error = rejected(good(**{field: ...}))
    assert (error.reason, error.field) == ("missing_field", field)
    assert field in error.detail


@pytest.mark.parametrize("field", ["id", "user", "text"])
def test_null_required_field(field):
    error = rejected(good(**{field: None}))
    assert (error.reason, error.field) == ("missing_field", field)


@pytest.mark.parametrize("field", ["id", "user", "text"])
@pytest.mark.parametrize("blank", ["", "   ", "\u200b\n\t"])
def test_empty_required_field(field, blank):
    error = rejected(good(**{field: blank}))
    assert (error.reason, error.field) == ("empty", field)
    assert field in error.detail


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("id", 1001, "number"),
        ("user", ["小李"], "array"),
        ("text", {"zh": "你好"}, "object"),
        ("text", True, "boolean"),
        ("platform", 7, "number"),
        ("ts", "1778299990", "string"),
        ("ts", True, "boolean"),
        ("ts", False, "boolean"),
    ],
)
def test_wrong_types(field, value, kind):
    error = rejected(good(**{field: value}))
    assert (error.reason, error.field) == ("wrong_type", field)
    assert field in error.detail and kind in error.detail


@pytest.mark.parametrize("ts", [-5, 1e300, 10**400])
def test_timestamp_out_of_range(ts):
    raw = good(ts=0).replace(b'"ts": 0', f'"ts": {ts}'.encode())
    error = rejected(raw)
    assert (error.reason, error.field) == ("bad_value", "ts")


def test_text_over_the_character_limit():
    error = rejected(good(text="工" * 201))
    assert (error.reason, error.field) == ("too_long", "text")
    assert "201" in error.detail and "200" in error.detail


@pytest.mark.parametrize("field", ["id", "user"])
def test_over_long_id_or_user(field):
    error = rejected(good(**{field: "x" * 129}))
    assert (error.reason, error.field) == ("too_long", field)


def test_rejection_reads_well_in_a_log():
    error = rejected(good(text=...))
    assert str(error) == "missing_field: text is required"


# -- operator commands -------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["skip", "pause", "resume"])
def test_commands_without_arguments(cmd):
    assert parse_control(payload(cmd=cmd, extra=1), max_bytes=4096) == ControlCommand(cmd)


def test_say_carries_cleaned_text():
    command = parse_control(payload(cmd="say", text=" 各位职工朋友，\n下午好！ "), max_bytes=4096)
    assert command == ControlCommand("say", text="各位职工朋友， 下午好！")


def test_load_schedule_by_name_or_inline_yaml():
    by_name = parse_control(
        payload(cmd="load_schedule", name="夜间节目", by="王芳"), max_bytes=4096
    )
    inline = "name: 测试\nsegments:\n  - id: a\n    points: [你好]\n"
    by_yaml = parse_control(payload(cmd="load_schedule", yaml=inline), max_bytes=4096)
    assert by_name == ControlCommand("load_schedule", name="夜间节目", by="王芳")
    assert by_yaml == ControlCommand("load_schedule", yaml=inline)  # newlines kept


def test_a_schedule_path_is_refused_without_being_echoed():
    with pytest.raises(RejectedInput) as caught:
        parse_control(payload(cmd="load_schedule", path="/etc/passwd"), max_bytes=4096)
    assert caught.value.reason == "bad_value"
    assert "passwd" not in caught.value.detail


def test_a_say_over_the_documented_length_is_refused_not_cut():
    with pytest.raises(RejectedInput) as caught:
        parse_control(payload(cmd="say", text="好" * (MAX_SAY_CHARS + 1)), max_bytes=8192)
    assert caught.value.reason == "too_long"
    assert parse_control(payload(cmd="say", text="好" * MAX_SAY_CHARS), max_bytes=8192).text


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"cmd": "explode"}, "unknown_command", "cmd"),
        ({"command": "skip"}, "missing_field", "cmd"),
        ({"cmd": 3}, "wrong_type", "cmd"),
        ({"cmd": "say"}, "missing_field", "text"),
        ({"cmd": "say", "text": "  "}, "empty", "text"),
        ({"cmd": "say", "text": 5}, "wrong_type", "text"),
        ({"cmd": "load_schedule"}, "missing_field", "name"),
        ({"cmd": "load_schedule", "name": "a", "yaml": "x: 1"}, "conflicting_fields", "name"),
        ({"cmd": "load_schedule", "name": 1}, "wrong_type", "name"),
        ({"cmd": "load_schedule", "name": "a\u0000.yaml"}, "binary", "name"),
        ({"cmd": "load_schedule", "yaml": ""}, "empty", "yaml"),
    ],
)
def test_bad_commands(fields, reason, field):
    with pytest.raises(RejectedInput) as caught:
        parse_control(payload(**fields), max_bytes=4096)
    assert (caught.value.reason, caught.value.field) == (reason, field)
    assert field in caught.value.detail


def test_unknown_command_lists_the_known_ones():
    with pytest.raises(RejectedInput) as caught:
        parse_control(payload(cmd="explode"), max_bytes=4096)
    assert "say" in caught.value.detail and "load_schedule" in caught.value.detail


def test_oversized_command():
    with pytest.raises(RejectedInput) as caught:
        parse_control(payload(cmd="say", text="好" * 2000), max_bytes=4096)
    assert caught.value.reason == "too_large"
