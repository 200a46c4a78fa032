"""An operator between the answer and the air: review mode, the emergency hold, blocked viewers.

The real rundown, director, desk, line queue, speaker (espeak-ng), moderation, control, air log
and store; only the answerer is a stand-in (a stream of fixed sentences). What is checked is
what reaches the line queue (what the playout would air), the events and the store.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from anchor.config import QuestionsConfig
from anchor.events import AnswerQueued, ControlApplied, Event, QuestionRejected, QuestionReviewed
from anchor.links.payloads import ControlCommand, parse_control
from anchor.media.linequeue import LineQueue
from anchor.messages import Card, Line, Question
from anchor.moderation import NEAR_DUPLICATE, Moderator, similarity
from anchor.questions.desk import QuestionDesk
from anchor.questions.reception import Reception
from anchor.questions.review import ReviewDesk, ReviewError
from anchor.show.airlog import AirLog
from anchor.show.control import Control
from anchor.show.director import DEFAULT_STANDBY, Director
from anchor.show.library import ScheduleLibrary
from anchor.show.rundown import OnAirScreen, Rundown
from anchor.show.schedule import load_schedule
from anchor.speech.espeak_voice import EspeakVoice
from anchor.speech.speaker import Speaker
from anchor.store import Store

VOICES = {"zh": "cmn-latn-pinyin", "en": "en-us"}
POINTS = [f"第{n}句。" for n in "一二三四五六七八九十"]
SHOW = (
    "name: t\nsegments:\n  - id: s\n    title: S\n    points: ["
    + ", ".join(POINTS)
    + "]\nidle: [欢迎在评论区提问。]\n"
)
BANNED = "赌博"
T0 = 1_778_300_000.0
# Answered on air (review off), the filler airs too while the answer is being made.
ON_AIR_ANSWER = ["有朋友问：怎么加入工会", "嗯，我查一下。", "答：怎么加入工会。", "完毕。"]


class WallClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class _Chunk:
    text: str
    filler: bool = False
    card: Card | None = None


class _Stream:
    """The answerer's stream: a filler first (never drafted), then the answer's sentences."""

    def __init__(self, text: str) -> None:
        self._sentences = [
            _Chunk("嗯，我查一下。", filler=True),
            _Chunk(f"答：{text}。"),
            _Chunk("完毕。"),
        ]
        self.answer = None

    def __aiter__(self) -> AsyncIterator[_Chunk]:
        return self._gen()

    async def __aenter__(self) -> _Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def _gen(self) -> AsyncIterator[_Chunk]:
        for chunk in self._sentences:
            await asyncio.sleep(0)
            yield chunk


class _Answerer:
    def stream(self, text: str) -> _Stream:
        return _Stream(text)


@pytest.fixture(scope="module")
def moderator(tmp_path_factory: pytest.TempPathFactory) -> Moderator:
    words = tmp_path_factory.mktemp("words") / "words.txt"
    words.write_text(f"{BANNED}\n", encoding="utf-8")
    return Moderator([words])


class Show:
    """The show-side parts as the daemon builds them, with what they publish kept."""

    def __init__(self, tmp_path: Path, moderator: Moderator, voice: EspeakVoice) -> None:
        path = tmp_path / "show.yaml"
        path.write_text(SHOW, encoding="utf-8")
        self.clock = WallClock()
        self.events: list[Event] = []
        self.director = Director(
            load_schedule(path),
            now=lambda: datetime.now(ZoneInfo("Asia/Shanghai")),
            idle_interval=30,
            publish=self.events.append,
        )
        self.desk = QuestionDesk(
            max_pending=10,
            max_age_s=3600,
            merge_window_s=300,
            similarity=similarity,
            near_duplicate=NEAR_DUPLICATE,
        )
        self.lines = LineQueue(2)
        screen = OnAirScreen(moderator)
        self.review = ReviewDesk(
            screen=screen, publish=self.events.append, enabled=True, wall_clock=self.clock
        )
        speaker = Speaker(voice, sample_rate=16000, sentence_gap=0.1, max_sentence_seconds=10)
        self.rundown = Rundown(
            self.director,
            self.desk,
            speaker,
            self.lines,
            answerer=_Answerer(),
            screen=screen,
            publish=self.events.append,
            wall_clock=self.clock,
            review=self.review,
        )
        schedules = tmp_path / "schedules"
        schedules.mkdir()
        self.control = Control(
            self.director,
            self.rundown,
            screen=screen,
            publish=self.events.append,
            library=ScheduleLibrary(schedules),
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.rundown.run(), name="test-rundown")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=10)

    def ask(self, qid: str, text: str, user: str = "viewer") -> None:
        question = Question(id=qid, user=user, text=text, received_at=self.clock.now)
        self.desk.admit(question, text)
        self.rundown.nudge()

    async def aired(self, count: int) -> list[Line]:
        """The next `count` lines the playout takes from the queue."""
        return [(await asyncio.wait_for(self.lines.get(), 10)).line for _ in range(count)]

    async def until_drafted(self, count: int = 1) -> None:
        """Lines keep airing while the answer is drafted off air; they are all scheduled."""
        async with asyncio.timeout(10):
            while len(self.review.pending()) < count:
                for line in await self.aired(1):
                    assert line.question_id is None, line

    async def until(self, text: str, limit: int = 12) -> list[Line]:
        """Lines aired up to and including the first that says `text`."""
        seen: list[Line] = []
        for _ in range(limit):
            seen.extend(await self.aired(1))
            if text in seen[-1].text:
                return seen
        raise AssertionError(f"{text!r} did not air in {[line.text for line in seen]}")

    def of(self, kind: type) -> list:
        return [event for event in self.events if isinstance(event, kind)]


@pytest.fixture
async def show(tmp_path: Path, moderator: Moderator) -> AsyncIterator[Show]:
    async with EspeakVoice(VOICES) as voice:
        parts = Show(tmp_path, moderator, voice)
        try:
            yield parts
        finally:
            await parts.stop()


def _texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


async def test_a_drafted_answer_airs_only_once_approved(show: Show) -> None:
    show.start()
    assert _texts(await show.aired(1)) == ["第一句。"]
    show.ask("q1", "怎么加入工会")
    await show.until_drafted()
    (draft,) = show.review.pending()
    assert draft.id == "q1" and draft.state == "pending"
    assert draft.text == "答：怎么加入工会。完毕。"  # the filler is not part of the draft
    # Pending: the schedule goes on, nothing of the question airs.
    during = await show.aired(3)
    assert all(line.question_id is None for line in during)
    assert not show.of(AnswerQueued)

    show.review.approve("q1", by="王芳")
    aired = await show.until("完毕。")
    answer = [line for line in aired if line.question_id == "q1"]
    assert _texts(answer) == ["有朋友问：怎么加入工会", "答：怎么加入工会。", "完毕。"]
    (queued,) = show.of(AnswerQueued)
    assert queued.waiting.question.id == "q1" and queued.last_line is answer[-1]
    assert show.review.pending() == [] and show.review.recent()[0].state == "approved"
    (reviewed,) = show.of(QuestionReviewed)
    assert (reviewed.verdict, reviewed.by) == ("approved", "王芳")
    # The schedule carries on after the answer, without losing a sentence.
    scheduled = [line.text for line in [*during, *aired] if line.segment == "s"]
    following = _texts(await show.aired(1))[0]
    assert POINTS.index(following) == POINTS.index(scheduled[-1]) + 1


async def test_an_edited_answer_airs_as_edited_and_must_pass_moderation(show: Show) -> None:
    show.start()
    show.ask("q1", "工伤怎么认定")
    await show.until_drafted()
    with pytest.raises(ReviewError) as refused:
        show.review.approve("q1", text=f"可以去{BANNED}。", by="王芳")
    assert refused.value.reason == "moderation"
    assert show.review.pending()[0].state == "pending"  # still waiting for a decision

    show.review.approve("q1", text="请拨打12351咨询。工作人员会帮您。", by="王芳")
    aired = await show.until("工作人员会帮您。")
    answer = [line.text for line in aired if line.question_id == "q1"]
    assert answer == ["有朋友问：工伤怎么认定", "请拨打12351咨询。", "工作人员会帮您。"]
    assert "答：工伤怎么认定。" not in _texts(aired)
    with pytest.raises(ReviewError) as again:
        show.review.reject("q1", by="王芳")
    assert again.value.reason == "not_pending"
    with pytest.raises(ReviewError) as unknown:
        show.review.approve("nope", by="王芳")
    assert unknown.value.reason == "unknown"


async def _stored(tmp_path: Path, show: Show, *ids: str) -> Store:
    store = await Store.open(tmp_path / "anchor.db")
    for qid in ids:
        await store.add_question(
            Question(id=qid, user="viewer", text="问题", received_at=T0),
            masked_text="问题",
            status="pending",
        )
    return store


async def _record(store: Store, events: list[Event]) -> None:
    airlog = AirLog(store, publish=lambda event: None)
    for event in events:
        await airlog.handle(event)


async def test_a_rejected_draft_never_airs_and_is_recorded(tmp_path: Path, show: Show) -> None:
    store = await _stored(tmp_path, show, "q1")
    show.start()
    show.ask("q1", "怎么申请困难补助")
    await show.until_drafted()
    show.review.reject("q1", by="王芳", reason="与本直播无关")
    aired = await show.aired(6)
    assert all(line.question_id is None for line in aired)
    assert not show.of(AnswerQueued)
    (reviewed,) = show.of(QuestionReviewed)
    assert (reviewed.question_id, reviewed.ids, reviewed.verdict) == ("q1", ("q1",), "rejected")
    assert (reviewed.reason, reviewed.by) == ("与本直播无关", "王芳")
    await _record(store, show.events)
    stored = await store.get("q1")
    assert stored is not None
    assert (stored.status, stored.reason) == ("rejected", "operator: 与本直播无关")
    await store.close()


async def test_a_draft_not_reviewed_in_time_expires_unaired(tmp_path: Path, show: Show) -> None:
    store = await _stored(tmp_path, show, "q1")
    show.start()
    show.ask("q1", "怎么申请困难补助")
    await show.until_drafted()
    show.clock.now += show.review.timeout_s + 1
    aired = await show.aired(4)
    assert show.review.pending() == [] and show.review.recent()[0].state == "expired"
    aired += await show.aired(4)
    assert all(line.question_id is None for line in aired)
    (reviewed,) = show.of(QuestionReviewed)
    assert (reviewed.verdict, reviewed.reason, reviewed.by) == ("expired", "review timed out", "")
    with pytest.raises(ReviewError):
        show.review.approve("q1", by="迟到的人")
    await _record(store, show.events)
    stored = await store.get("q1")
    assert stored is not None and (stored.status, stored.reason) == ("expired", "review timed out")
    await store.close()


async def test_review_off_answers_on_air_and_pending_drafts_stay(show: Show) -> None:
    show.start()
    show.ask("q1", "怎么加入工会")
    await show.until_drafted()
    show.review.set_enabled(False)
    show.ask("q2", "工伤怎么认定")
    aired = await show.until("答：工伤怎么认定。")
    assert "有朋友问：工伤怎么认定" in _texts(aired)
    assert [draft.id for draft in show.review.pending()] == ["q1"]
    assert not any(line.question_id == "q1" for line in aired + await show.aired(4))


async def test_the_emergency_hold_airs_only_the_standby_loop(show: Show) -> None:
    show.review.set_enabled(False)
    show.start()
    before = await show.aired(3)
    assert _texts(before) == POINTS[:3]
    for _ in range(1000):  # the rundown queues the next sentences (the lookahead)
        if len(show.lines) == 2:
            break
        await asyncio.sleep(0.01)  # polling a queue filled by another task
    assert len(show.lines) == 2

    outcome = await show.control.apply(ControlCommand("hold", by="王芳"), "console")
    assert outcome.applied and show.control.held and show.director.held
    assert show.of(ControlApplied)[-1] == ControlApplied("hold")
    assert len(show.lines) == 0  # what was queued and not on air is gone
    show.ask("q1", "怎么加入工会")
    held = await show.aired(3)
    assert _texts(held) == [DEFAULT_STANDBY[0]] * 3
    await show.control.apply(ControlCommand("say", text="各位稍等。", by="王芳"), "console")
    held = await show.until("各位稍等。")
    assert set(_texts(held[:-1])) <= {DEFAULT_STANDBY[0]}
    held = await show.aired(2)
    assert _texts(held) == [DEFAULT_STANDBY[0]] * 2
    assert len(show.desk) == 1 and not show.of(AnswerQueued)  # the question waits

    outcome = await show.control.apply(ControlCommand("release", by="王芳"), "console")
    assert outcome.applied and not show.control.held
    after = await show.until("完毕。")
    assert _texts(after) == ON_AIR_ANSWER
    # The schedule carries on where it was when the hold cut in.
    assert _texts(await show.aired(2)) == POINTS[3:5]


async def test_a_hold_cuts_an_answer_and_its_question_is_answered_after(show: Show) -> None:
    show.review.set_enabled(False)
    show.start()
    show.ask("q1", "怎么加入工会")
    assert _texts(await show.aired(1)) == ["有朋友问：怎么加入工会"]
    await show.control.apply(ControlCommand("hold"), "console")
    held = await show.aired(3)
    assert _texts(held) == [DEFAULT_STANDBY[0]] * 3
    assert not show.of(AnswerQueued)
    await show.control.apply(ControlCommand("release"), "console")
    after = await show.until("完毕。")
    assert _texts(after) == ON_AIR_ANSWER
    assert len(show.of(AnswerQueued)) == 1


async def test_an_approved_draft_waits_out_a_hold(show: Show) -> None:
    show.start()
    show.ask("q1", "怎么加入工会")
    await show.until_drafted()
    await show.control.apply(ControlCommand("hold"), "console")
    show.review.approve("q1", by="王芳")
    held = await show.aired(3)
    assert _texts(held) == [DEFAULT_STANDBY[0]] * 3
    await show.control.apply(ControlCommand("release"), "console")
    after = await show.until("完毕。")
    assert [line.text for line in after if line.question_id == "q1"][-1] == "完毕。"


def test_hold_and_release_are_control_commands_on_the_wire() -> None:
    for cmd in ("hold", "release"):
        payload = json.dumps({"cmd": cmd, "by": "王芳"}).encode()
        assert parse_control(payload, max_bytes=4096) == ControlCommand(cmd, by="王芳")


async def test_a_blocked_viewers_questions_are_refused_and_dropped(
    tmp_path: Path, moderator: Moderator
) -> None:
    events: list[Event] = []
    blocked = {("troll", "douyin")}
    desk = QuestionDesk(
        max_pending=10,
        max_age_s=3600,
        merge_window_s=300,
        similarity=similarity,
        near_duplicate=NEAR_DUPLICATE,
    )
    async with await Store.open(tmp_path / "anchor.db") as store:
        reception = Reception(
            QuestionsConfig(),
            store=store,
            moderator=moderator,
            desk=desk,
            nudge=lambda: None,
            publish=events.append,
            blocked=lambda user, platform: (user, platform) in blocked,
        )

        async def ask(qid: str, user: str, text: str) -> str:
            payload = {"id": qid, "user": user, "text": text, "platform": "douyin"}
            return await reception.take_payload(json.dumps(payload, ensure_ascii=False).encode())

        assert await ask("q1", "troll", "怎么加入工会") == "rejected"
        (refused,) = [event for event in events if isinstance(event, QuestionRejected)]
        assert (refused.reason, refused.question_id, refused.user) == ("blocked", "q1", "troll")
        assert "怎么加入工会" not in refused.detail
        stored = await store.get("q1")
        assert stored is not None and stored.status == "rejected"
        assert stored.reason is not None and stored.reason.startswith("blocked")
        assert reception.counts == {"rejected": 1}
        assert len(desk) == 0

        # Blocked after asking: the questions still waiting go, others' stay.
        assert await ask("q2", "viewer", "工伤怎么认定") == "accepted"
        assert await ask("q3", "pest", "工伤怎么认定？") in ("merged", "accepted")
        assert await ask("q4", "pest", "困难补助怎么申请") == "accepted"
        assert desk.drop_user("pest") == 2
        left, _ = desk.take(time.time())
        assert left is not None and left.ids == ["q2"] and len(desk) == 0
