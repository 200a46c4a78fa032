"""How fast the picture is made, compared side by side with the encoder alone.

Prints, for 1280x720 and 1920x1080 at 30 fps, pinned to one core:
  * pipeline: the real playout loop (audio slicing, lip track, avatar render, H.264 + AAC encode,
    MPEG-TS mux) in fast mode, as a multiple of real time;
  * encoder alone: the same frames (re-rendered beforehand, identical bytes) and the same audio
    through the same encoder, as a multiple of real time;
  * their ratio: what the renderer and the frame loop cost on top of encoding.
Then runs `anchor run` live for a while in a child process and prints its CPU seconds per
stream second and its peak memory.

    .venv/bin/python benchmarks/bench_pipeline.py [--seconds 20] [--live-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from anchor.avatar.loader import load_pack
from anchor.avatar.renderer import AvatarRenderer
from anchor.media.clock import MediaClock
from anchor.media.encoder import EncoderSettings, StreamEncoder
from anchor.media.linequeue import LineQueue
from anchor.media.output import OutputTarget
from anchor.media.playout import Playout
from anchor.messages import Card, Line, MouthShape, SpokenLine

ROOT = Path(__file__).resolve().parent.parent
RATE, FPS = 48000, 30
CAPTIONS = [
    "大家好，欢迎来到职工服务直播间。",
    "职工互助保障的理赔材料，可以向所在单位工会咨询。",
    "遇到欠薪，可以拨打一二三五一职工服务热线。",
]


def _speechlike_lines(seconds: float) -> list[SpokenLine]:
    """Syllable-rate modulated noise with pauses: drives the mouth like real speech does."""
    rng = np.random.default_rng(5)
    lines, total, i = [], 0.0, 0
    while total < seconds + 5:
        speech_s = float(rng.uniform(2.0, 4.0))
        t = np.arange(int(speech_s * RATE)) / RATE
        envelope = np.clip(np.sin(2 * np.pi * 4.5 * t), 0, None) ** 0.7
        speech = (rng.standard_normal(t.size) * 0.15 * envelope).astype(np.float32)
        samples = np.concatenate([speech, np.zeros(int(0.5 * RATE), dtype=np.float32)])
        lines.append(SpokenLine(Line(CAPTIONS[i % len(CAPTIONS)]), samples, len(speech)))
        total += len(samples) / RATE
        i += 1
    return lines


class _RecordingRenderer:
    """Passes through to the real renderer and notes its inputs (to re-render them later)."""

    def __init__(self, inner: AvatarRenderer) -> None:
        self.inner = inner
        self.calls: list[tuple[int, float, str | None, MouthShape, Card | None]] = []

    def render(
        self,
        frame_index: int,
        mouth: float,
        caption: str | None,
        shape: MouthShape,
        card: Card | None = None,
    ) -> np.ndarray:
        self.calls.append((frame_index, mouth, caption, shape, card))
        return self.inner.render(frame_index, mouth, caption, shape, card)


class _AudioTap:
    """An encoder wrapper that keeps the audio each frame carried."""

    def __init__(self, inner: StreamEncoder) -> None:
        self.inner = inner
        self.audio: list[np.ndarray] = []

    def open(self) -> None:
        self.inner.open()

    def write(self, frame_index: int, picture: np.ndarray, samples: np.ndarray) -> None:
        self.audio.append(samples)
        self.inner.write(frame_index, picture, samples)

    def close(self) -> None:
        self.inner.close()


def _settings(width: int, height: int) -> EncoderSettings:
    return EncoderSettings(width=width, height=height, threads=1)


async def _pipeline(width: int, height: int, seconds: float, out: Path):
    clock = MediaClock(RATE, FPS)
    pack = load_pack(ROOT / "avatars" / "default")
    renderer = _RecordingRenderer(AvatarRenderer(pack, width, height, fps=FPS))
    encoder = _AudioTap(
        StreamEncoder(OutputTarget.parse(str(out)), clock, _settings(width, height))
    )
    lines = LineQueue(maxsize=1000)
    for spoken in _speechlike_lines(seconds):
        await lines.put(spoken)
    playout = Playout(
        clock, renderer, encoder, lines, live=False, duration_frames=clock.frames_for(seconds)
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await playout.run()
    return time.perf_counter() - wall0, time.process_time() - cpu0, renderer, encoder.audio


def _encoder_alone(width, height, frames, audio, out: Path) -> tuple[float, float]:
    clock = MediaClock(RATE, FPS)
    encoder = StreamEncoder(OutputTarget.parse(str(out)), clock, _settings(width, height))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    encoder.open()
    for n, (picture, samples) in enumerate(zip(frames, audio, strict=True)):
        encoder.write(n, picture, samples)
    encoder.close()
    return time.perf_counter() - wall0, time.process_time() - cpu0


def _render_only(renderer: AvatarRenderer, calls) -> float:
    start = time.perf_counter()
    for index, mouth, caption, shape, card in calls:
        renderer.render(index, mouth, caption, shape, card)
    return (time.perf_counter() - start) / len(calls)


def bench_resolution(width: int, height: int, seconds: float, workdir: Path) -> None:
    wall, cpu, recorder, audio = asyncio.run(
        _pipeline(width, height, seconds, workdir / f"pipe{height}.ts")
    )
    pack = load_pack(ROOT / "avatars" / "default")
    fresh = AvatarRenderer(pack, width, height, fps=FPS)
    frames = [fresh.render(*call).copy() for call in recorder.calls]
    enc_wall, enc_cpu = _encoder_alone(width, height, frames, audio, workdir / f"enc{height}.ts")
    render_ms = _render_only(AvatarRenderer(pack, width, height, fps=FPS), recorder.calls) * 1000
    print(
        f"{width}x{height}@{FPS}: pipeline {seconds / wall:6.1f}x real time "
        f"({cpu / seconds * 1000:5.1f} ms CPU per stream s) | encoder alone "
        f"{seconds / enc_wall:6.1f}x | pipeline/encoder time {wall / enc_wall:4.2f} | "
        f"render alone {render_ms:.2f} ms/frame"
    )


def bench_live(seconds: float, workdir: Path) -> None:
    out = workdir / "live.ts"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "anchor",
            "run",
            "--duration",
            f"{seconds}s",
            "--out",
            str(out),
            "--log-level",
            "WARNING",
        ],
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"live 1280x720@{FPS} (demo schedule, espeak-ng voice, both cores allowed): "
        f"{cpu / seconds:.3f} CPU s per stream s over {seconds:.0f} s "
        f"(wall {wall:.1f} s incl. start-up), peak RSS {after.ru_maxrss / 1024:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="stream seconds per resolution")
    parser.add_argument("--live-seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # Live first, while this process is small: a child's peak RSS counts the pages it
        # shares with its parent between fork and exec.
        bench_live(args.live_seconds, workdir)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
            print("pinned to one core for the fast-mode figures")
        for width, height in ((1280, 720), (1920, 1080)):
            bench_resolution(width, height, args.seconds, workdir)


if __name__ == "__main__":
    main()
