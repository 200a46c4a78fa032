"""The director's order of the day, driven by a clock the test controls."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from anchor.messages import Priority
from anchor.show.director import Director
from anchor.show.schedule import load_schedule

SHANGHAI = ZoneInfo("Asia/Shanghai")

SHOW = """\
name: test show
gap_seconds: 2
segments:
  - id: first
    title: First
    points:
      - 大家好。欢迎收看。
      - {text: 第二句。, pause: 1.5}
  - id: second
    title: Second
    points:
      - 第三句。
timetable:
  - {at: "14:00", segment: second}
idle:
  - 有问题请留言。
"""


class FakeNow:
    def __init__(self, start: datetime) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value


@pytest.fixture
def schedule(tmp_path: Path):
    path = tmp_path / "show.yaml"
    path.write_text(SHOW, encoding="utf-8")
    return load_schedule(path)


def _texts(director: Director, count: int) -> list[str]:
    return [director.next_line().text for _ in range(count)]


def test_the_show_opens_with_the_first_segment_and_loops(schedule) -> None:
    now = FakeNow(datetime(2026, 5, 1, 9, 0, tzinfo=SHANGHAI))
    director = Director(schedule, now=now, idle_interval=30, seed=1)
    lines = [director.next_line() for _ in range(9)]
    assert [line.text for line in lines] == [
        "大家好。",
        "欢迎收看。",
        "第二句。",
        "有问题请留言。",
        "第三句。",
        "有问题请留言。",
        "大家好。",
        "欢迎收看。",
        "第二句。",
    ]
    assert [line.pause_after for line in lines[:4]] == [0.0, 0.0, 1.5, 2.0]
    assert lines[0].segment == "first" and lines[4].segment == "second"
    assert lines[3].priority is Priority.IDLE and lines[0].priority is Priority.SCHEDULE


def test_a_timetable_start_takes_over_at_the_next_sentence(schedule) -> None:
    now = FakeNow(datetime(2026, 5, 1, 13, 59, 50, tzinfo=SHANGHAI))
    director = Director(schedule, now=now, idle_interval=30)
    assert director.next_line().text == "大家好。"
    now.value += timedelta(seconds=15)  # 14:00:05
    assert director.next_line().text == "第三句。"
    assert director.current_segment.id == "second"
    # Once started, the same start time does not fire again that day.
    assert _texts(director, 3) == ["有问题请留言。", "大家好。", "欢迎收看。"]


def test_timetable_times_are_in_the_schedules_zone(schedule) -> None:
    # 14:00 in Shanghai is 06:00 UTC.
    now = FakeNow(datetime(2026, 5, 1, 5, 59, tzinfo=ZoneInfo("UTC")))
    director = Director(schedule, now=now, idle_interval=30)
    director.next_line()
    now.value += timedelta(minutes=2)
    assert director.next_line().text == "第三句。"


def test_a_start_across_midnight_is_not_missed(tmp_path: Path) -> None:
    path = tmp_path / "night.yaml"
    path.write_text(SHOW.replace('"14:00"', '"00:00"'), encoding="utf-8")
    now = FakeNow(datetime(2026, 5, 1, 23, 59, 58, tzinfo=SHANGHAI))
    director = Director(load_schedule(path), now=now, idle_interval=30)
    director.next_line()
    now.value += timedelta(seconds=5)
    assert director.next_line().text == "第三句。"


def test_an_idle_only_schedule_says_idle_lines_at_the_idle_interval(tmp_path: Path) -> None:
    path = tmp_path / "idle.yaml"
    path.write_text("name: quiet\nidle:\n  - 第一句。\n  - 第二句。\n", encoding="utf-8")
    director = Director(load_schedule(path), now=FakeNow(datetime.now(SHANGHAI)), idle_interval=45)
    lines = [director.next_line() for _ in range(4)]
    assert sorted(line.text for line in lines[:2]) == ["第一句。", "第二句。"]
    assert sorted(line.text for line in lines[2:]) == ["第一句。", "第二句。"]
    assert all(line.pause_after == 45 and line.priority is Priority.IDLE for line in lines)


def test_an_operator_line_goes_first_then_the_show_resumes(schedule) -> None:
    director = Director(schedule, now=FakeNow(datetime.now(SHANGHAI)), idle_interval=30)
    assert director.next_line().text == "大家好。"
    director.say_now("请注意。马上开始抽奖。")
    lines = [director.next_line() for _ in range(3)]
    assert [line.text for line in lines] == ["请注意。", "马上开始抽奖。", "欢迎收看。"]
    assert lines[0].priority is Priority.OPERATOR


def test_loading_a_new_schedule_starts_it_from_the_top(schedule, tmp_path: Path) -> None:
    director = Director(schedule, now=FakeNow(datetime.now(SHANGHAI)), idle_interval=30)
    _texts(director, 2)
    path = tmp_path / "other.yaml"
    path.write_text(
        "name: other\nsegments:\n  - id: x\n    title: X\n    points: [新节目开始。]\n",
        encoding="utf-8",
    )
    director.load(load_schedule(path))
    assert director.next_line().text == "新节目开始。"
