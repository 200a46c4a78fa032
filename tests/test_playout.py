"""The frame loop under load and in silence."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from configs import write_config

from anchor.media.clock import MediaClock
from anchor.media.linequeue import LineQueue
from anchor.media.playout import LATENESS_BUCKETS, Playout
from anchor.messages import Line, SpokenLine

ROOT = Path(__file__).resolve().parent.parent


class _SlowRenderer:
    """Takes longer than a frame lasts, like an overloaded machine."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.rendered: list[int] = []

    def render(
        self, frame_index: int, mouth: float, caption: str | None, shape=None, card=None
    ) -> np.ndarray:
        time.sleep(self.seconds)
        self.rendered.append(frame_index)
        return np.full((6, 4), frame_index % 256, dtype=np.uint8)


class _Recorder:
    def __init__(self) -> None:
        self.frames: list[tuple[int, int, int]] = []  # index, picture tag, samples

    def open(self) -> None:
        pass

    def write(self, frame_index: int, picture: np.ndarray, samples: np.ndarray) -> None:
        self.frames.append((frame_index, int(picture[0, 0]), len(samples)))

    def close(self) -> None:
        pass


async def test_a_slow_machine_drops_renders_never_timestamps() -> None:
    clock = MediaClock(48000, 30)
    renderer, encoder = _SlowRenderer(0.05), _Recorder()  # 50 ms per render, 33 ms per frame
    lines = LineQueue(maxsize=1000)
    playout = Playout(clock, renderer, encoder, lines, live=True, duration_frames=60)
    await playout.run()

    indices = [index for index, _, _ in encoder.frames]
    assert indices == list(range(60)), "every frame index is written once, in order"
    assert all(samples == 1600 for _, _, samples in encoder.frames)
    assert playout.stats.renders_skipped > 10
    assert playout.stats.renders + playout.stats.renders_skipped == 60
    # A skipped render repeats the previous picture under the new timestamp.
    repeats = sum(
        1
        for (_, a, _), (_, b, _) in zip(encoder.frames, encoder.frames[1:], strict=False)
        if a == b
    )
    assert repeats == playout.stats.renders_skipped
    # Every frame is counted by how late it started; the skipped ones were over a frame late.
    late = playout.stats.frame_lateness
    assert late.frames == 60 and sum(late.counts) == 60
    over_a_frame = (
        sum(
            count
            for bound, count in zip(LATENESS_BUCKETS, late.counts, strict=False)
            if bound > 0.033
        )
        + late.counts[-1]
    )
    assert over_a_frame >= playout.stats.renders_skipped


async def test_live_mode_airs_silence_rather_than_waiting_for_speech() -> None:
    clock = MediaClock(48000, 30)
    encoder = _Recorder()
    lines = LineQueue(maxsize=1000)
    playout = Playout(clock, _SlowRenderer(0), encoder, lines, live=True, duration_frames=15)
    task = asyncio.create_task(playout.run())
    await asyncio.sleep(0.25)
    speech = np.full(4800, 0.2, dtype=np.float32)
    await lines.put(SpokenLine(Line("你好。"), speech, len(speech)))
    await task
    assert len(encoder.frames) == 15
    assert playout.stats.underrun_frames >= 3, "nothing was queued at first: silence aired"
    assert playout.stats.lines_aired == 1


@pytest.mark.slow
def test_the_host_stays_alive_when_nothing_is_said(tmp_path: Path) -> None:
    """An idle-only schedule: long silences, yet the picture breathes and blinks."""
    schedule = tmp_path / "quiet.yaml"
    schedule.write_text("name: quiet\nidle:\n  - 有问题欢迎留言。\n", encoding="utf-8")
    config = write_config(
        tmp_path, width=640, height=360, schedule=schedule, extra="idle: {interval_seconds: 30}\n"
    )
    out = tmp_path / "quiet.ts"
    run = subprocess.run(
        [sys.executable, "-m", "anchor", "run", "--config", str(config), "--fast",
         "--duration", "12s", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="gray").astype(np.int16) for f in container.decode(video=0)]
    with av.open(str(out)) as container:
        audio = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)])
    assert "有问题欢迎留言" in run.stderr, "the idle line was said"
    speech_end = np.nonzero(np.abs(audio) > 0.01)[0].max() / 48000
    assert speech_end < 5, "after the idle line comes a long silence"
    silent_frames = frames[int(speech_end * 30) + 15 :]
    assert len(silent_frames) > 150
    # In silence the picture still moves (breathing, blinking): it never freezes for long.
    moved = [
        np.abs(b - a).mean() > 0.05 for a, b in zip(silent_frames, silent_frames[1:], strict=False)
    ]
    assert sum(moved) >= 8
    longest_still, run_length = 0, 0
    for m in moved:
        run_length = 0 if m else run_length + 1
        longest_still = max(longest_still, run_length)
    assert longest_still < 4 * 30, "no frozen picture longer than 4 seconds"
