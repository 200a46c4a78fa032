"""A restarted channel carries on where it stopped, unless its schedule changed."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from configs import write_config

from anchor.config import load_config
from anchor.daemon import Channel, RunOptions
from anchor.media.output import OutputTarget
from anchor.show.schedule import load_schedule

SENTENCES = [f"这是第{n}句话。" for n in range(1, 13)]


def _schedule(path: Path, sentences: list[str]) -> Path:
    points = "\n".join(f"      - {text}" for text in sentences)
    path.write_text(
        f"name: 续播测试\nsegments:\n  - id: main\n    title: 续播\n    points:\n{points}\n",
        encoding="utf-8",
    )
    return path


def _aired(db: Path) -> list[str]:
    """The scheduled lines in the as-run log, in airing order."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT text FROM as_run WHERE priority = 'schedule' ORDER BY rowid"
        ).fetchall()
    return [text for (text,) in rows]


async def _run_once(tmp_path: Path, schedule: Path, name: str) -> None:
    config = load_config(
        write_config(tmp_path, schedule=schedule, extra="health: {listen: null}\n")
    )
    options = RunOptions(output=OutputTarget.parse(str(tmp_path / name)), fast=True, duration_s=5)
    await Channel(config, load_schedule(config.schedule), options).run()


async def test_a_restart_resumes_at_the_next_sentence(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    schedule = _schedule(tmp_path / "show.yaml", SENTENCES)
    await _run_once(tmp_path, schedule, "first.ts")
    first = _aired(tmp_path / "anchor.db")
    assert first[0] == SENTENCES[0]
    assert 1 <= len(first) < len(SENTENCES) - 1

    await _run_once(tmp_path, schedule, "second.ts")
    second = _aired(tmp_path / "anchor.db")[len(first) :]
    following = SENTENCES[SENTENCES.index(first[-1]) + 1]
    assert second[0] == following, "the first line after the restart is the next sentence"
    assert f"resuming main at sentence {SENTENCES.index(following) + 1}" in caplog.text


async def test_a_changed_schedule_starts_from_the_top(tmp_path: Path) -> None:
    schedule = _schedule(tmp_path / "show.yaml", SENTENCES)
    await _run_once(tmp_path, schedule, "first.ts")
    first = _aired(tmp_path / "anchor.db")
    assert first[-1] != SENTENCES[0]

    changed = [*SENTENCES[:-1], "最后一句换了。"]
    await _run_once(tmp_path, _schedule(schedule, changed), "second.ts")
    second = _aired(tmp_path / "anchor.db")[len(first) :]
    assert second[0] == SENTENCES[0]
