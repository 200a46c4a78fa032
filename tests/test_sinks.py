"""Network outputs, each read by a real peer (ffmpeg) on loopback, as OBS or a server would."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from configs import write_config

ROOT = Path(__file__).resolve().parent.parent


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def _receiver(args: list[str], out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args,
         "-c", "copy", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _engine(tmp_path: Path, url: str, seconds: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "anchor", "run", "--config", str(_config(tmp_path)),
         "--duration", f"{seconds}s", "--out", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _streams(path: Path) -> dict[str, int]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
         "stream=codec_name,nb_read_packets", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {s["codec_name"]: int(s["nb_read_packets"]) for s in json.loads(probe.stdout)["streams"]}


def _finish(receiver: subprocess.Popen) -> str:
    try:
        _, err = receiver.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        receiver.kill()
        _, err = receiver.communicate()
    return err


@pytest.mark.slow
def test_udp_mpegts_reaches_a_reader(tmp_path: Path) -> None:
    port = _free_port(socket.SOCK_DGRAM)
    out = tmp_path / "udp.ts"
    # The reader gives up after this long without a packet: long enough for the engine to
    # start on a busy machine (it loads the moderation tables and the voice first).
    receiver = _receiver(["-timeout", "10000000", "-i", f"udp://127.0.0.1:{port}"], out)
    time.sleep(0.5)
    run = _engine(tmp_path, f"udp://127.0.0.1:{port}?pkt_size=1316", 4)
    err = _finish(receiver)
    assert run.returncode == 0, run.stderr[-2000:]
    streams = _streams(out)
    assert streams.get("h264", 0) > 60 and streams.get("aac", 0) > 60, err


@pytest.mark.slow
def test_srt_reaches_a_listener(tmp_path: Path) -> None:
    port = _free_port(socket.SOCK_DGRAM)
    out = tmp_path / "srt.ts"
    receiver = _receiver(["-i", f"srt://127.0.0.1:{port}?mode=listener"], out)
    time.sleep(0.5)
    run = _engine(tmp_path, f"srt://127.0.0.1:{port}?mode=caller", 6)
    err = _finish(receiver)
    assert run.returncode == 0, run.stderr[-2000:]
    streams = _streams(out)
    # The receiver starts at the first keyframe after the SRT handshake (keyframes every 2 s).
    assert streams.get("h264", 0) > 60 and streams.get("aac", 0) > 60, err


@pytest.mark.slow
def test_rtmp_server_that_starts_late_is_reached_by_reconnecting(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "rtmp.flv"
    log_path = tmp_path / "engine.log"
    with log_path.open("w") as log_file:
        engine = subprocess.Popen(
            [sys.executable, "-m", "anchor", "run", "--config", str(_config(tmp_path)),
             "--duration", "8s", "--out", f"rtmp://127.0.0.1:{port}/live/test"],
            stdout=subprocess.DEVNULL, stderr=log_file, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while "retrying in" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # on air with nobody to receive: wait for a refused attempt
        receiver = _receiver(["-listen", "1", "-i", f"rtmp://127.0.0.1:{port}/live/test"], out)
        engine.wait(timeout=60)
    log = log_path.read_text()
    err = _finish(receiver)
    assert engine.returncode == 0, log[-2000:]
    assert "retrying in" in log and "connected to rtmp://127.0.0.1" in log
    assert "/live/test" not in log, "the stream key must not be logged"
    streams = _streams(out)
    assert streams.get("h264", 0) > 30 and streams.get("aac", 0) > 30, err


def _first_pts(path: Path, stream: str) -> float:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", "packet=pts_time",
         "-read_intervals", "%+#3", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return min(float(v) for v in probe.stdout.split())


@pytest.mark.slow
def test_rtmp_server_that_restarts_mid_show_gets_the_show_back_in_sync(tmp_path: Path) -> None:
    port = _free_port()
    url = f"rtmp://127.0.0.1:{port}/live/test"
    first, second = tmp_path / "first.flv", tmp_path / "second.flv"
    receiver = _receiver(["-listen", "1", "-i", url], first)
    time.sleep(0.5)
    log_path = tmp_path / "engine.log"
    with log_path.open("w") as log_file:
        engine = subprocess.Popen(
            [sys.executable, "-m", "anchor", "run", "--config", str(_config(tmp_path)),
             "--duration", "14s", "--out", url],
            stdout=subprocess.DEVNULL, stderr=log_file, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while (not first.exists() or first.stat().st_size < 50_000) and time.monotonic() < deadline:
            time.sleep(0.1)
        receiver.kill()  # the server goes away mid-show
        receiver.wait()
        time.sleep(2)
        receiver = _receiver(["-listen", "1", "-i", url], second)
        engine.wait(timeout=60)
    err = _finish(receiver)
    log = log_path.read_text()
    assert engine.returncode == 0, log[-2000:]
    assert "reconnecting" in log and log.count("connected to rtmp://127.0.0.1") >= 2
    streams = _streams(second)
    assert streams.get("h264", 0) > 30 and streams.get("aac", 0) > 30, err
    assert "/live/test" not in log, "the stream key must not be logged"
    # The second connection starts audio and video together (FLV rebases both to zero).
    video_start, audio_start = _first_pts(second, "v"), _first_pts(second, "a")
    assert abs(video_start - audio_start) < 0.05
