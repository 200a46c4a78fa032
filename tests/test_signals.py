"""Ctrl-C in a terminal: SIGINT reaches the engine's whole process group, its children too.

The engine owns shutdown: the sentence on air finishes, the stream is closed so the file plays
to its end, and nothing else in the group (the espeak-ng child) dies noisily on the way.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import av
import numpy as np
import pytest
from configs import ROOT, write_config

from anchor.config import load_voice_profile
from anchor.speech.registry import create_voice
from anchor.speech.resample import speech_bounds

SENTENCE = "欢迎来到职工服务直播间。"  # about 2.5 s spoken: it ends within the 3 s stop grace
NEXT = "这一句在停播之后，不应该播出。"
ON_AIR = re.compile(r"\[\d{2}:\d{2}:\d{2}\] (?P<text>.+)$")  # the engine's line per sentence
SIGNAL_AFTER_S = 0.5  # into the sentence: on air for sure, and less than 2.5 s of it left
SPEECH_RMS = 0.02  # a second of speech is well above this; the stream's silence is 0
CODEC_SLACK_S = 0.1  # AAC's priming and frame rounding; a cut sentence misses seconds
FPS = 30


class StderrLines:
    """The engine's stderr, read on a thread so the test can wait for a line with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, name="engine-stderr", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"the engine ended before {pattern.pattern!r}:\n{self.tail()}")
            self.lines.append(line)
            if found := pattern.search(line.rstrip("\n")):
                return found
        pytest.fail(f"no {pattern.pattern!r} within {timeout:g} s:\n{self.tail()}")

    def finish(self) -> str:
        """All of stderr, once the engine has exited."""
        self._thread.join(timeout=10)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)

    def tail(self) -> str:
        return "".join(self.lines)[-4000:]


def _schedule(tmp_path: Path) -> Path:
    path = tmp_path / "signals.yaml"
    path.write_text(
        "name: 信号测试\nsegments:\n  - id: only\n    title: 信号\n"
        f"    points: [{SENTENCE}, {NEXT}]\n",
        encoding="utf-8",
    )
    return path


def _spoken_seconds(text: str) -> float:
    """How long the offline voice speaks `text`, trimmed as the engine trims it."""

    async def synthesize() -> float:
        voice = create_voice(load_voice_profile(ROOT / "voices", "offline"))
        try:
            audio = await voice.synthesize(text, "zh")
        finally:
            await voice.aclose()
        start, end = speech_bounds(audio.pcm, audio.sample_rate)
        return (end - start) / audio.sample_rate

    return asyncio.run(synthesize())


def _decode_to_the_end(path: Path) -> tuple[np.ndarray, int, float]:
    """Every packet decoded, as a player would: mono audio, its rate, and where video ends."""
    audio: list[np.ndarray] = []
    rate, video_end = 0, 0.0
    with av.open(str(path)) as container:
        for packet in container.demux():
            for frame in packet.decode():
                if isinstance(frame, av.AudioFrame):
                    audio.append(frame.to_ndarray().mean(axis=0))
                    rate = frame.sample_rate
                elif frame.pts is not None and frame.time_base is not None:
                    video_end = max(video_end, float(frame.pts * frame.time_base) + 1 / FPS)
    assert audio and video_end > 0, "the file should hold both audio and video"
    return np.concatenate(audio).astype(np.float32), rate, video_end


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_finishes_the_sentence_without_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "live.ts"
    config = write_config(
        tmp_path, schedule=_schedule(tmp_path), extra="health: {listen: '127.0.0.1:0'}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "anchor", "run", "--config", str(config), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,  # its own process group, as a terminal's foreground job is
    )
    assert process.stderr is not None
    stderr = StderrLines(process.stderr)
    try:
        stderr.wait_for(ON_AIR, timeout=90)
        time.sleep(SIGNAL_AFTER_S)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    log = stderr.finish()

    assert code == 0, stderr.tail()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, stderr.tail()
    aired = [m["text"] for line in stderr.lines if (m := ON_AIR.search(line.rstrip("\n")))]
    assert set(aired) == {SENTENCE}, "the stop comes after the sentence on air, before the next"

    samples, rate, video_end = _decode_to_the_end(out)
    audio_end = len(samples) / rate
    assert abs(audio_end - video_end) < 0.2, "both streams run to the end of the file"
    last_second = samples[-rate:]
    assert np.sqrt(np.mean(last_second**2)) > SPEECH_RMS, "speech up to the stop"
    onset = int(np.argmax(np.abs(samples) > 1e-3))  # the stream is silent until the sentence
    spoken_s = (len(samples) - onset) / rate
    expected_s = _spoken_seconds(SENTENCE)
    assert spoken_s >= expected_s - CODEC_SLACK_S, (
        f"the sentence was cut: {spoken_s:.2f} s of {expected_s:.2f} s aired"
    )
