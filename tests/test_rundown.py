"""Precedence on air: operator, then viewers' answers, then the schedule, which resumes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from anchor.events import AnswerQueued, Event
from anchor.media.linequeue import LineQueue
from anchor.messages import Card, Line, Priority, Question, SpokenLine
from anchor.questions.desk import Admission, QuestionDesk
from anchor.show.director import Director
from anchor.show.rundown import Rundown
from anchor.show.schedule import load_schedule

SHOW = """\
name: t
segments:
  - id: s
    title: S
    points: [第一句。, 第二句。, 第三句。, 第四句。, 第五句。]
"""


class _Voice:
    """Stands in for the speaker: one 'sample' per character, instantly."""

    async def speak(self, line: Line) -> SpokenLine:
        samples = np.ones(max(1, len(line.text)), dtype=np.float32)
        return SpokenLine(line, samples, len(samples))


@dataclass
class _Chunk:
    text: str
    filler: bool = False
    card: Card | None = None


class _Stream:
    def __init__(self, sentences: list[str]) -> None:
        self._sentences = sentences
        self.answer = "answer"

    def __aiter__(self):
        return self._gen()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    async def _gen(self):
        for sentence in self._sentences:
            yield _Chunk(sentence)


class _Answerer:
    def stream(self, text: str) -> _Stream:
        return _Stream([f"答：{text}。", "完毕。"])


def _question(qid: str, text: str) -> Question:
    return Question(id=qid, user=qid, text=text, received_at=time.time())


def _screen(text: str) -> str | None:
    """Stands in for moderation: 第三句 is refused, digits are masked."""
    if "第三句" in text:
        return None
    return "".join("#" if c.isdigit() else c for c in text)


@pytest.fixture
def parts(tmp_path: Path):
    path = tmp_path / "show.yaml"
    path.write_text(SHOW, encoding="utf-8")
    director = Director(
        load_schedule(path), now=lambda: datetime.now(ZoneInfo("Asia/Shanghai")), idle_interval=30
    )
    desk = QuestionDesk(
        max_pending=5, max_age_s=600, merge_window_s=300,
        similarity=lambda a, b: 1.0 if a == b else 0.0, near_duplicate=0.9,
    )  # fmt: skip
    lines = LineQueue(2)
    answered: list[str] = []

    def publish(event: Event) -> None:
        if isinstance(event, AnswerQueued):
            answered.append(event.waiting.question.id)

    rundown = Rundown(
        director, desk, _Voice(), lines, answerer=_Answerer(), screen=_screen, publish=publish,
    )  # fmt: skip
    return director, desk, lines, rundown, answered


async def _drain(lines: LineQueue, count: int) -> list[str]:
    return [(await lines.get()).line.text for _ in range(count)]


async def test_a_question_cuts_in_and_the_segment_resumes_where_it_stopped(parts) -> None:
    director, desk, lines, rundown, answered = parts
    task = asyncio.create_task(rundown.run())
    try:
        assert await _drain(lines, 1) == ["第一句。"]
        await asyncio.sleep(0.01)  # the rundown has synthesized two more (the lookahead)
        assert len(lines) == 2
        assert desk.admit(_question("q1", "怎么入会"), "怎么入会")[0] is Admission.QUEUED
        rundown.nudge()
        aired = await _drain(lines, 6)
    finally:
        task.cancel()
    # The segment resumes at 第二句; 第三句 is held back by moderation (see _screen).
    assert aired == [
        "有朋友问：怎么入会",
        "答：怎么入会。",
        "完毕。",
        "第二句。",
        "第四句。",
        "第五句。",
    ]
    assert answered == ["q1"]


async def test_an_operator_line_goes_before_waiting_questions(parts) -> None:
    director, desk, lines, rundown, _ = parts
    task = asyncio.create_task(rundown.run())
    try:
        await _drain(lines, 1)
        desk.admit(_question("q1", "工伤怎么办"), "工伤怎么办")
        director.say_now("紧急通知。")
        rundown.nudge()
        aired = await _drain(lines, 3)
    finally:
        task.cancel()
    assert aired == ["紧急通知。", "有朋友问：工伤怎么办", "答：工伤怎么办。"]


async def test_merged_questions_are_read_out_once_with_the_count(parts) -> None:
    _, desk, lines, rundown, answered = parts
    for i in range(3):
        desk.admit(_question(f"q{i}", "怎么入会"), "怎么入会")
    task = asyncio.create_task(rundown.run())
    try:
        aired = await _drain(lines, 3)
    finally:
        task.cancel()
    assert aired[0] == "有三位朋友问到：怎么入会"
    assert answered == ["q0"]


async def test_a_full_queue_waits_without_losing_order() -> None:
    queue = LineQueue(1)
    first = SpokenLine(Line("a", Priority.SCHEDULE), np.ones(1, np.float32), 1)
    second = SpokenLine(Line("b", Priority.SCHEDULE), np.ones(1, np.float32), 1)
    await queue.put(first)
    pending = asyncio.create_task(queue.put(second))
    await asyncio.sleep(0.01)
    assert not pending.done() and len(queue) == 1
    assert (await queue.get()).line.text == "a"
    await asyncio.wait_for(pending, 1)
    assert (await queue.get()).line.text == "b"


async def test_take_below_keeps_more_important_lines() -> None:
    queue = LineQueue(3)
    for text, priority in (("s", Priority.SCHEDULE), ("a", Priority.ANSWER), ("i", Priority.IDLE)):
        await queue.put(SpokenLine(Line(text, priority), np.ones(1, np.float32), 1))
    taken = queue.take_below(Priority.ANSWER)
    assert [s.line.text for s in taken] == ["s", "i"]
    assert queue.head_priority() is Priority.ANSWER and len(queue) == 1


async def test_every_line_passes_moderation_scheduled_or_not(parts) -> None:
    director, desk, lines, rundown, _ = parts
    director.say_now("请拨打13800000000。")
    task = asyncio.create_task(rundown.run())
    try:
        aired = await _drain(lines, 4)
    finally:
        task.cancel()
    assert aired == ["请拨打###########。", "第一句。", "第二句。", "第四句。"]
