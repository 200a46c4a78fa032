"""A low-rate JPEG of the program for the console: the playout's last picture, made smaller.

Made only when a page asks, at most `fps` times a second whoever asks (a cached copy is
served in between), on a worker thread: the cost is a colour conversion and a small JPEG,
about a millisecond at 480 pixels wide, so the preview stays a rounding error beside the
stream it shows (`benchmarks/bench_console.py` measures it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import cv2
import numpy as np

WIDTH = 480
QUALITY = 70


def jpeg_of(picture: np.ndarray, width: int = WIDTH) -> bytes:
    """A yuv420p frame (height*3//2, width) as a JPEG `width` pixels wide."""
    bgr = cv2.cvtColor(picture, cv2.COLOR_YUV2BGR_I420)
    height = max(2, round(bgr.shape[0] * width / bgr.shape[1]))
    small = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:
        raise ValueError("the preview could not be encoded")
    return data.tobytes()


class Preview:
    def __init__(
        self,
        picture: Callable[[], np.ndarray | None],
        *,
        fps: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._picture = picture
        self._every = 1.0 / fps
        self._clock = clock
        self._jpeg: bytes | None = None
        self._made = -float("inf")
        self._lock = asyncio.Lock()
        self.made = 0

    async def jpeg(self) -> bytes | None:
        async with self._lock:
            if self._jpeg is not None and self._clock() - self._made < self._every:
                return self._jpeg
            picture = self._picture()
            if picture is None:
                return self._jpeg
            self._jpeg = await asyncio.to_thread(jpeg_of, picture.copy())
            self._made = self._clock()
            self.made += 1
            return self._jpeg
