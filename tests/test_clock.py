"""The one-clock rule: audio and video timestamps come from one counter and never drift."""

from __future__ import annotations

import asyncio
import json
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from anchor.media.clock import MediaClock
from anchor.media.encoder import EncoderSettings, StreamEncoder
from anchor.media.linequeue import LineQueue
from anchor.media.output import OutputTarget
from anchor.media.playout import Playout
from anchor.messages import Line, SpokenLine


@pytest.mark.parametrize(("rate", "fps"), [(48000, 30), (48000, 25), (44100, 30), (48000, 60)])
def test_frames_tile_the_sample_counter_exactly(rate: int, fps: int) -> None:
    clock = MediaClock(rate, fps)
    frames = 2 * 3600 * fps
    total = sum(clock.samples_in_frame(n) for n in range(frames))
    assert total == clock.frame_start_sample(frames)
    assert abs(Fraction(frames, fps) - Fraction(total, rate)) < Fraction(1, rate)


class _StillRenderer:
    def __init__(self) -> None:
        self.picture = np.zeros((6, 4), dtype=np.uint8)

    def render(
        self, frame_index: int, mouth: float, caption: str | None, shape=None, card=None
    ) -> np.ndarray:
        return self.picture


class _RecordingEncoder:
    """Stands in for the encoder and records the timestamps it would have written."""

    def __init__(self, clock: MediaClock) -> None:
        self.clock = clock
        self.video_pts: list[Fraction] = []
        self.audio_end: list[Fraction] = []
        self._samples = 0

    def open(self) -> None:
        pass

    def write(self, frame_index: int, picture: np.ndarray, samples: np.ndarray) -> None:
        assert samples.dtype == np.float32
        self.video_pts.append(Fraction(frame_index, self.clock.fps))
        self._samples += len(samples)
        self.audio_end.append(Fraction(self._samples, self.clock.sample_rate))

    def close(self) -> None:
        pass


async def _feed(queue: LineQueue, seed: int) -> None:
    """Lines of odd lengths (never a multiple of a frame) so boundaries fall everywhere."""
    rng = np.random.default_rng(seed)
    while True:
        length = int(rng.integers(1, 48000 * 6))
        samples = np.full(length, 0.1, dtype=np.float32)
        await queue.put(SpokenLine(Line("x"), samples, speech_samples=length))


async def test_two_hours_of_stream_keep_audio_and_video_within_a_frame() -> None:
    clock = MediaClock(48000, 30)
    encoder = _RecordingEncoder(clock)
    lines = LineQueue(maxsize=2)
    feeder = asyncio.create_task(_feed(lines, seed=7))
    frames = clock.frames_for(2 * 3600)
    playout = Playout(clock, _StillRenderer(), encoder, lines, live=False, duration_frames=frames)
    try:
        await playout.run()
    finally:
        feeder.cancel()

    video = np.array([float(p) for p in encoder.video_pts])
    audio = np.array([float(p) for p in encoder.audio_end])
    assert len(video) == frames
    steps = np.diff(video)
    assert np.allclose(steps, 1 / 30), "video timestamps jumped or went backwards"
    assert np.all(np.diff(audio) > 0), "audio timestamps went backwards"
    # Audio written after frame n ends exactly where frame n+1 begins.
    last_video_end = encoder.video_pts[-1] + Fraction(1, 30)
    assert abs(encoder.audio_end[-1] - last_video_end) < Fraction(1, 30)
    assert encoder.audio_end[-1] == last_video_end
    assert playout.stats.underrun_frames == 0


def _packet_times(path: str, stream: str) -> list[tuple[int, int]]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_entries",
            "packet=pts,duration",
            "-of",
            "json",
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(int(p["pts"]), int(p.get("duration", 0))) for p in json.loads(out)["packets"]]


def test_muxed_stream_timestamps_are_continuous(tmp_path) -> None:
    """Five minutes through the real encoder: every packet exactly one step after the last."""
    clock = MediaClock(48000, 30)
    path = str(tmp_path / "clock.ts")
    encoder = StreamEncoder(OutputTarget.parse(path), clock, EncoderSettings(160, 90))
    encoder.open()
    picture = np.full((135, 160), 100, dtype=np.uint8)
    frames = clock.frames_for(300)
    rng = np.random.default_rng(3)
    for n in range(frames):
        samples = (rng.standard_normal(clock.samples_in_frame(n)) * 0.05).astype(np.float32)
        encoder.write(n, picture, samples)
    encoder.close()

    video = _packet_times(path, "v")
    audio = _packet_times(path, "a")
    assert len(video) == frames
    video_pts = sorted(p for p, _ in video)
    audio_pts = [p for p, _ in audio]
    assert set(np.diff(video_pts)) == {3000}  # 90 kHz ticks per frame at 30 fps
    assert set(np.diff(audio_pts)) == {1920}  # 1024 samples at 48 kHz in 90 kHz ticks
    video_end = video_pts[-1] + 3000
    audio_end = audio_pts[-1] + 1920
    # The audio's last block is padded up to 1024 samples, so it may end up to one block late.
    assert abs(video_end - audio_end) < 3000
