"""Carrying the muxed stream where PyAV's own FFmpeg cannot.

PyAV's wheels ship an FFmpeg without SRT. Debian's `ffmpeg` program has it, so for srt://
the engine still encodes and muxes MPEG-TS itself (timestamps stay ours) and hands the bytes
through a pipe to `ffmpeg -c copy`, which only does the transport.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from typing import IO
from urllib.parse import urlsplit

from anchor.media.output import OutputTarget
from anchor.redact import redact_url

CLOSE_TIMEOUT_S = 3.0


def needs_bridge(target: OutputTarget) -> bool:
    return not target.is_file and urlsplit(target.url).scheme.lower() == "srt"


class SrtBridge:
    """A write-only file object whose bytes leave over SRT through an ffmpeg child process."""

    def __init__(self, url: str) -> None:
        exe = shutil.which("ffmpeg")
        if exe is None:
            raise OSError("srt:// needs the ffmpeg program with SRT (apt-get install ffmpeg)")
        self._label = redact_url(url)
        self._process = subprocess.Popen(
            [
                exe,
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-fflags",
                "nobuffer",
                "-probesize",
                "65536",
                "-analyzeduration",
                "500000",
                "-f",
                "mpegts",
                "-i",
                "pipe:0",
                "-c",
                "copy",
                "-f",
                "mpegts",
                url,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            bufsize=0,  # each write goes to ffmpeg at once: a held buffer is held picture
        )
        assert self._process.stdin is not None  # stdin=PIPE above
        self._stdin: IO[bytes] = self._process.stdin

    def write(self, data: bytes) -> int:
        if self._process.poll() is not None:
            raise BrokenPipeError(f"SRT transport to {self._label} ended: {self._stderr()}")
        self._stdin.write(data)
        return len(data)

    def flush(self) -> None:
        if self._process.poll() is None:
            self._stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stderr is not None:
            self._process.stderr.close()

    def _stderr(self) -> str:
        if self._process.stderr is None:
            return ""
        return self._process.stderr.read().decode(errors="replace").strip()[-300:]
