"""Every file type the engine offers is one a player reads to the end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from anchor.media.clock import MediaClock
from anchor.media.encoder import EncoderSettings, StreamEncoder
from anchor.media.output import OutputTarget


@pytest.mark.parametrize("suffix", [".ts", ".mp4", ".mkv", ".flv"])
def test_two_seconds_in_each_container(tmp_path: Path, suffix: str) -> None:
    clock = MediaClock(48000, 30)
    path = tmp_path / f"clip{suffix}"
    encoder = StreamEncoder(OutputTarget.parse(str(path)), clock, EncoderSettings(320, 180))
    encoder.open()
    for n in range(60):
        picture = np.full((270, 320), 16 + 3 * n, dtype=np.uint8)
        t = (clock.frame_start_sample(n) + np.arange(clock.samples_in_frame(n))) / 48000
        encoder.write(n, picture, (0.25 * np.sin(2 * np.pi * 330 * t)).astype(np.float32))
    encoder.close()
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_name,nb_read_frames,color_space", "-of", "json", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert probe.returncode == 0 and probe.stderr == "", probe.stderr
    streams = {s["codec_name"]: s for s in json.loads(probe.stdout)["streams"]}
    assert int(streams["h264"]["nb_read_frames"]) == 60
    assert streams["h264"]["color_space"] == "bt709"
    assert int(streams["aac"]["nb_read_frames"]) >= 2 * 48000 // 1024


def test_writing_before_opening_is_an_error(tmp_path: Path) -> None:
    from anchor.media.encoder import EncoderError

    encoder = StreamEncoder(
        OutputTarget.parse(str(tmp_path / "x.ts")), MediaClock(48000, 30), EncoderSettings(64, 64)
    )
    with pytest.raises(EncoderError, match="not open"):
        encoder.write(0, np.zeros((96, 64), np.uint8), np.zeros(1600, np.float32))


def test_picture_only_stream_has_no_audio(tmp_path: Path) -> None:
    clock = MediaClock(48000, 30)
    path = tmp_path / "silent.ts"
    settings = EncoderSettings(320, 180, audio=False)
    encoder = StreamEncoder(OutputTarget.parse(str(path)), clock, settings)
    encoder.open()
    for n in range(30):
        samples = np.full(clock.samples_in_frame(n), 0.25, dtype=np.float32)
        encoder.write(n, np.full((270, 320), 16 + 5 * n, dtype=np.uint8), samples)
    encoder.close()
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_type,codec_name,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert probe.returncode == 0 and probe.stderr == "", probe.stderr
    streams = json.loads(probe.stdout)["streams"]
    assert [(s["codec_type"], s["codec_name"]) for s in streams] == [("video", "h264")]
    assert int(streams[0]["nb_read_frames"]) == 30
