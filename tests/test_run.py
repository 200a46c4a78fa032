"""`anchor run` end to end: the demo show becomes a stream a player (and a viewer) accepts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from configs import write_config

ROOT = Path(__file__).resolve().parent.parent
FPS, RATE = 30, 48000


def _anchor(*args: str) -> list[str]:
    return [sys.executable, "-m", "anchor", *args]


def _probe(path: Path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_packets",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def _small_config(tmp_path: Path, width: int = 640, height: int = 360) -> Path:
    return write_config(tmp_path, width=width, height=height)


def _decode(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Gray video frames and mono audio samples, as a viewer's player would decode them."""
    frames, audio = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="gray"))
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            audio.append(frame.to_ndarray().mean(axis=0))
    return frames, np.concatenate(audio).astype(np.float32)


def _mouth_box(width: int, height: int) -> tuple[int, int, int, int]:
    from anchor.avatar.loader import load_pack
    from anchor.avatar.renderer import AvatarRenderer

    pack = load_pack(ROOT / "avatars" / "default")
    return AvatarRenderer(pack, width, height, fps=FPS, captions=False).mouth_box


@pytest.mark.slow
def test_sixty_seconds_of_the_demo_show(tmp_path: Path) -> None:
    out = tmp_path / "show.ts"
    # The project's schedule, avatar and voice at the default size, with a store of its own:
    # the default store in data/ holds where an operator's last run stopped, and the show
    # would resume there instead of at its first sentence.
    config = _small_config(tmp_path, width=1280, height=720)
    run = subprocess.run(
        _anchor("run", "--config", str(config), "--fast", "--duration", "60s", "--out", str(out)),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    info = _probe(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1280, 720)
    assert video["r_frame_rate"] == "30/1"
    assert (audio["codec_name"], audio["sample_rate"]) == ("aac", "48000")
    assert abs(int(video["nb_read_packets"]) - 60 * FPS) <= 1
    assert abs(float(video["duration"]) - 60.0) <= 1 / FPS

    frames, samples = _decode(out)
    assert abs(len(samples) / RATE - 60.0) < 0.1
    per_frame = RATE // FPS
    usable = min(len(frames), len(samples) // per_frame)
    chunks = samples[: usable * per_frame].reshape(usable, per_frame)
    rms = np.sqrt((chunks**2).mean(axis=1))
    assert np.percentile(rms, 90) > 0.02, "the show should contain speech well above silence"
    loud, silent = rms > 0.03, rms < 0.001
    assert loud.sum() > 10 * FPS, "at least ten seconds of clear speech"
    assert silent.sum() > FPS // 2, "sentences should be separated by real silence"

    # What a viewer sees of an open mouth: its dark inside. Count dark pixels around the mouth
    # (padded so the host's gentle head motion keeps it inside the box).
    x, y, w, h = _mouth_box(1280, 720)
    pad = 10
    dark = np.array(
        [(f[y - pad : y + h + pad, x - pad : x + w + pad] < 90).sum() for f in frames[:usable]]
    )
    # Silence that has lasted a few frames: the mouth has had time to close.
    settled = np.convolve(silent.astype(int), np.ones(6, dtype=int))[:usable] >= 6
    assert settled.sum() > 5
    closed = np.median(dark[settled])
    assert dark[loud].mean() > 1.5 * closed, "the mouth should open while speech is loud"
    assert np.percentile(np.abs(dark[settled] - closed), 90) <= 0.15 * closed, (
        "the mouth should rest closed during silence"
    )


def _start_live(tmp_path: Path, out: Path, *, written: int) -> subprocess.Popen:
    """A live `anchor run` to a file, returned once it has written `written` bytes."""
    process = subprocess.Popen(
        _anchor("run", "--config", str(_small_config(tmp_path)), "--out", str(out)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < written):
        if process.poll() is not None:
            pytest.fail(f"the live run ended early: {process.stderr.read()[-2000:]}")
        time.sleep(0.2)
    assert out.exists(), "the live run never started writing"
    return process


@pytest.mark.slow
def test_ctrl_c_during_a_live_run_leaves_a_playable_file(tmp_path: Path) -> None:
    out = tmp_path / "live.ts"
    process = _start_live(tmp_path, out, written=200_000)
    try:
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    assert stopped_in < 8, "graceful stop is bounded (sentence ≤ 3 s, then close)"
    check = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,nb_read_frames",
            "-of",
            "json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and check.stderr == "", check.stderr
    streams = {
        s["codec_type"]: int(s["nb_read_frames"]) for s in json.loads(check.stdout)["streams"]
    }
    assert streams["video"] > 2 * FPS and streams["audio"] > 0


@pytest.mark.slow
def test_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    out = tmp_path / "live.ts"
    process = _start_live(tmp_path, out, written=50_000)
    try:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        assert time.monotonic() - started < 2.5
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert "exiting at once" in stderr


def test_a_broken_schedule_refuses_to_start(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nsegments:\n  - id: a\n    points: []\n", encoding="utf-8")
    run = subprocess.run(
        _anchor("run", "--schedule", str(broken), "--out", str(tmp_path / "x.ts")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert f"{broken}:" in run.stderr and "points" in run.stderr
    assert not (tmp_path / "x.ts").exists()


def test_schedule_check_reports_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: x\nsegments:\n  - id: a\n    title: A\n    points: [hi]\n"
        "timetable:\n  - {at: '25:00', segment: a}\n  - {at: '09:00', segment: nope}\n",
        encoding="utf-8",
    )
    run = subprocess.run(_anchor("schedule", "check", str(broken)), capture_output=True, text=True)
    assert run.returncode == 1
    assert f"{broken}:7:" in run.stderr and "25:00" in run.stderr
    assert f"{broken}:8:" in run.stderr and "nope" in run.stderr
    ok = subprocess.run(
        _anchor("schedule", "check", str(ROOT / "schedules" / "union-demo.yaml")),
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr


def test_a_missing_word_list_stops_the_start_with_its_name(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8").splitlines()
    gone = f"moderation: {{wordlists: [{tmp_path / 'gone.txt'}]}}"
    text = [gone if line.startswith("moderation:") else line for line in text]
    config.write_text("\n".join(text) + "\n", encoding="utf-8")
    run = subprocess.run(
        _anchor("run", "--config", str(config), "--out", str(tmp_path / "x.ts")),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert f"cannot start:\n{tmp_path / 'gone.txt'}: cannot read word list" in run.stderr
    assert "Traceback" not in run.stderr
