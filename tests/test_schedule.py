"""Schedules as an operator meets them: the shipped demo loads, and every mistake is
reported with its file, line and key, all at once."""

import datetime as dt
from pathlib import Path

import pytest

from anchor.show.schedule import (
    Point,
    Schedule,
    ScheduleError,
    Segment,
    check_schedule_file,
    load_schedule,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "schedules" / "union-demo.yaml"

VALID = """\
name: 职工服务直播间
segments:
  - id: welcome
    title: 开场
    points:
      - 大家好，欢迎来到直播间。
      - {text: 有问题请留言。, pause: 1.5}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "show.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ScheduleError) as caught:
        load_schedule(path)
    assert check_schedule_file(path) == caught.value.errors
    return caught.value.errors


def test_demo_schedule_loads_with_greeting_first() -> None:
    assert check_schedule_file(DEMO) == []
    schedule = load_schedule(DEMO)
    assert schedule.source == DEMO
    assert str(schedule.timezone) == "Asia/Shanghai"
    ids = [segment.id for segment in schedule.segments]
    assert ids == ["mutual-aid", "legal-aid", "join-union", "service-stations"]
    assert all(5 <= len(segment.points) <= 10 for segment in schedule.segments)
    assert schedule.segments[0].points[0].text.startswith("大家好")
    assert len(schedule.idle) >= 6
    times = [entry.at for entry in schedule.timetable]
    assert times == sorted(times) and len(times) >= 3
    assert {entry.segment for entry in schedule.timetable} <= set(ids)


def test_points_may_be_plain_text_or_text_with_pause(tmp_path: Path) -> None:
    schedule = load_schedule(write(tmp_path, VALID))
    assert schedule.segments[0].points == (
        Point(text="大家好，欢迎来到直播间。", pause=0.0),
        Point(text="有问题请留言。", pause=1.5),
    )
    assert schedule.gap_seconds == 3.0
    assert schedule.timetable == () and schedule.idle == ()


def test_timetable_is_sorted_and_unquoted_times_are_read_as_written(tmp_path: Path) -> None:
    text = (
        VALID
        + 'timetable:\n  - {at: "20:30", segment: welcome}\n  - at: 8:05\n    segment: welcome\n'
    )
    schedule = load_schedule(write(tmp_path, text))
    assert [entry.at for entry in schedule.timetable] == [dt.time(8, 5), dt.time(20, 30)]


def test_missing_keys_name_the_parent_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nsegments:\n  - id: a\n    points: [hi]\n  - title: t\n")
    assert errors_of(path) == [
        f"{path}:3: segments.0.title: required key is missing",
        f"{path}:5: segments.1.id: required key is missing",
        f"{path}:5: segments.1.points: required key is missing",
    ]


def test_wrong_types_say_what_was_expected(tmp_path: Path) -> None:
    text = VALID.replace("pause: 1.5", "pause: abc") + "gap_seconds: [1]\nidle: [yes]\n"
    path = write(tmp_path, text)
    assert errors_of(path) == [
        f"{path}:7: segments.0.points.1.pause: expected a number, got 'abc'",
        f"{path}:8: gap_seconds: expected a number, got a list",
        f"{path}:9: idle.0: expected text, got true (put it in quotes)",
    ]


def test_blank_text_and_empty_points_are_rejected(tmp_path: Path) -> None:
    text = (
        VALID.replace("大家好，欢迎来到直播间。", '"   "') + "  - {id: b, title: t, points: []}\n"
    )
    path = write(tmp_path, text)
    assert errors_of(path) == [
        f"{path}:6: segments.0.points.0.text: must not be empty",
        f"{path}:8: segments.1.points: must not be empty",
    ]


def test_bad_times_are_explained(tmp_path: Path) -> None:
    text = VALID + (
        "timetable:\n"
        '  - {at: "25:00", segment: welcome}\n'
        "  - {at: 8am, segment: welcome}\n"
        "  - {at: 800, segment: welcome}\n"
    )
    path = write(tmp_path, text)
    assert errors_of(path) == [
        f"{path}:9: timetable.0.at: '25:00' is not a time of day: use HH:MM from 00:00 to 23:59",
        f"{path}:10: timetable.1.at: '8am' is not a time of day: use HH:MM from 00:00 to 23:59",
        f'{path}:11: timetable.2.at: expected a time like "08:00" (in quotes), got 800',
    ]


def test_unknown_segment_and_duplicate_start_in_timetable(tmp_path: Path) -> None:
    text = VALID + (
        'timetable:\n  - {at: "08:00", segment: welcom}\n  - {at: "08:00", segment: welcome}\n'
    )
    path = write(tmp_path, text)
    assert errors_of(path) == [
        f"{path}:9: timetable.0.segment: no segment with id 'welcom'; did you mean 'welcome'?",
        f"{path}:10: timetable.1.at: 08:00 is already taken by timetable.0",
    ]


def test_duplicate_segment_ids_are_reported_with_type_errors(tmp_path: Path) -> None:
    text = VALID + "  - id: welcome\n    title: 重复\n    points: [再见]\ngap_seconds: abc\n"
    path = write(tmp_path, text)
    assert errors_of(path) == [
        f"{path}:8: segments.1.id: duplicate segment id 'welcome' (already used by segments.0.id)",
        f"{path}:11: gap_seconds: expected a number, got 'abc'",
    ]


def test_unknown_keys_are_errors_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    title: 开场\n", "    titel: 开场\n"))
    assert errors_of(path) == [
        f"{path}:3: segments.0.title: required key is missing",
        f"{path}:4: segments.0.titel: unknown key (did you mean 'title'?)",
    ]


def test_bad_timezone(tmp_path: Path) -> None:
    path = write(tmp_path, "timezone: Asia/Shangai\n" + VALID)
    assert errors_of(path) == [
        f"{path}:1: timezone: unknown time zone 'Asia/Shangai'; did you mean Asia/Shanghai?"
    ]


def test_empty_and_comment_only_files(tmp_path: Path) -> None:
    empty = write(tmp_path, "", "empty.yaml")
    comments = write(tmp_path, "# nothing yet\n\n", "comments.yaml")
    for path in (empty, comments):
        assert errors_of(path) == [f"{path}:1: the file is empty; expected 'key: value' lines"]


def test_schedule_with_nothing_to_say(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nidle:\n")
    assert errors_of(path) == [
        f"{path}:1: nothing to say: add at least one segment or one idle line"
    ]


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.encode("utf-8") + "idle: [坏]\n".encode("gbk"))
    assert errors_of(path) == [
        f"{path}:8: not valid UTF-8 (byte 0xbb at column 8); save the file with UTF-8 encoding"
    ]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    title: 开场", "\ttitle: 开场"))
    assert errors_of(path) == [
        f"{path}:4: YAML syntax error: found character '\\t' that cannot start any token "
        "(while scanning for the next token); indent with spaces, not tabs"
    ]


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\n" + VALID)
    assert errors_of(path) == [f"{path}:2: name: duplicate key (first on line 1)"]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- 大家好\n")
    assert errors_of(path) == [
        f"{path}:1: expected 'key: value' lines at the top level, got a list"
    ]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert check_schedule_file(path) == [f"{path}: file not found"]


def test_source_is_not_a_file_key(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "source: /etc/passwd\n")
    assert errors_of(path) == [f"{path}:8: source: unknown key"]


def test_schedules_built_in_code_are_checked_too() -> None:
    segment = Segment(id="a", title="t", points=(Point(text="hi"),))
    with pytest.raises(ValueError, match="no segment with id 'b'"):
        Schedule(name="x", segments=(segment,), timetable=({"at": "09:00", "segment": "b"},))
    schedule = Schedule(name="x", segments=(segment,))
    assert schedule.source is None and schedule.segment("a") is segment
