"""Mouth openness from the audio itself.

Working from samples rather than from a voice's timing data means any voice drives the mouth,
including ones that report nothing. Per video frame the loudness (RMS in dBFS) is mapped onto
0..1 and smoothed with a fast attack and a slower release, the way a real mouth opens quickly
on a syllable and closes a little more lazily. Below the floor the mouth closes fully, so the
host rests with lips shut in silence instead of trembling on noise.
"""

from __future__ import annotations

import math

import numpy as np


class LipTracker:
    """Turns each frame's audio chunk into a mouth-openness value in [0, 1]."""

    def __init__(
        self,
        fps: float,
        *,
        floor_db: float = -45.0,
        full_db: float = -14.0,
        attack_s: float = 0.025,
        release_s: float = 0.09,
        closed_below: float = 0.04,
    ) -> None:
        if full_db <= floor_db:
            raise ValueError("full_db must be above floor_db")
        self._floor_db = floor_db
        self._span_db = full_db - floor_db
        frame_s = 1.0 / fps
        # One-pole smoothing coefficients: the share of the gap closed in one frame.
        self._attack = 1.0 - math.exp(-frame_s / attack_s)
        self._release = 1.0 - math.exp(-frame_s / release_s)
        self._closed_below = closed_below
        self._value = 0.0

    @property
    def value(self) -> float:
        return self._value

    def reset(self) -> None:
        self._value = 0.0

    def update(self, chunk: np.ndarray) -> float:
        """Advance one frame with that frame's samples (float32 mono in [-1, 1])."""
        target = self.openness(chunk)
        coeff = self._attack if target > self._value else self._release
        self._value += (target - self._value) * coeff
        if self._value < self._closed_below and target == 0.0:
            self._value = 0.0
        return self._value

    def openness(self, chunk: np.ndarray) -> float:
        """Unsmoothed openness of one chunk: 0 at or below the floor, 1 at full loudness."""
        if chunk.size == 0:
            return 0.0
        mean_square = float(np.dot(chunk, chunk)) / chunk.size
        if mean_square <= 1e-12:
            return 0.0
        level_db = 10.0 * math.log10(mean_square)
        return min(1.0, max(0.0, (level_db - self._floor_db) / self._span_db))
