"""A stop loses nothing that aired: the on-air events are handled before the engine lets go."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from configs import write_config

from anchor.config import load_config
from anchor.daemon import Channel, RunOptions
from anchor.events import AnswerQueued, Event, LineAired
from anchor.media.output import OutputTarget
from anchor.messages import Line
from anchor.show.schedule import load_schedule
from anchor.store import Store

QUESTION = "职工互助保障是什么？"
SLOW_DISK_S = 0.25  # every as-run write takes this long: the as-run log lags behind the air


def _channel(tmp_path: Path, name: str, *, questions: tuple[str, ...] = ()) -> Channel:
    config = load_config(write_config(tmp_path, extra="health: {listen: null}\n"))
    options = RunOptions(
        output=OutputTarget.parse(str(tmp_path / name)),
        fast=True,
        duration_s=None if questions else 12,
        questions=questions,
    )
    return Channel(config, load_schedule(config.schedule), options)


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def _stop_when_the_answer_has_aired(channel: Channel) -> None:
    """Stop the channel (as SIGTERM does) the moment the answer's last sentence goes on air."""
    last: list[Line | None] = []

    async def watch(event: Event) -> None:
        if isinstance(event, AnswerQueued):
            last.append(event.last_line)
        elif isinstance(event, LineAired) and last and event.line is last[0]:
            channel.request_stop()

    channel.feed.subscribe("test: stop after the answer", watch, (AnswerQueued, LineAired))


async def test_an_answer_aired_just_before_a_stop_is_not_aired_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_aired = Store.record_aired

    async def slow_record_aired(self: Store, **kwargs: object) -> None:
        await asyncio.sleep(SLOW_DISK_S)
        await record_aired(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "record_aired", slow_record_aired)
    first = _channel(tmp_path, "first.ts", questions=(QUESTION,))
    _stop_when_the_answer_has_aired(first)
    await asyncio.wait_for(first.run(), 120)

    db = tmp_path / "anchor.db"
    [(question_id, status)] = _rows(db, "SELECT id, status FROM questions")
    assert status in ("answered", "fallback"), "the answer that aired is recorded as aired"
    answer_lines = _rows(db, f"SELECT text FROM as_run WHERE question_id = '{question_id}'")
    assert len(answer_lines) >= 2, "the question and its answer are in the as-run log"

    monkeypatch.setattr(Store, "record_aired", record_aired)
    await asyncio.wait_for(_channel(tmp_path, "second.ts").run(), 120)
    again = _rows(db, f"SELECT text FROM as_run WHERE question_id = '{question_id}'")
    assert again == answer_lines, "after the restart the answer is not aired again"
    assert _rows(db, "SELECT status FROM questions") == [(status,)]
