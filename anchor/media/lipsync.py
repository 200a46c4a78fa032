"""The mouth per video frame: how far it opens from the audio, which shape from the voice.

Working from samples rather than from a voice's timing data means any voice drives the mouth,
including ones that report nothing. Per video frame the loudness (RMS in dBFS) is mapped onto
0..1 and smoothed with a fast attack and a slower release, the way a real mouth opens quickly
on a syllable and closes a little more lazily. Below the floor the mouth closes fully, so the
host rests with lips shut in silence instead of trembling on noise.

Where the voice reported lip shapes (`SpokenLine.cues`), `MouthTrack` adds the shape: the cue
active at the frame's last sample of the line on air, counted in samples of that line, so the
shape stays locked to the stream clock however the line was scheduled. A CLOSED cue (m, b, p)
shuts the lips even over loud audio; the other shapes open as far as the loudness says.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence

import numpy as np

from anchor.messages import MouthCue, MouthShape


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


class MouthTrack:
    """(openness, shape) per frame from that frame's samples and the line's lip-shape cues."""

    def __init__(self, fps: float, sample_rate: int, **envelope: float) -> None:
        self._lips = LipTracker(fps, **envelope)
        self._rate = sample_rate
        self._cues: Sequence[MouthCue] = ()
        self._cue_samples: list[int] = []

    def reset(self) -> None:
        self._lips.reset()

    def update(
        self,
        chunk: np.ndarray,
        cues: Sequence[MouthCue] = (),
        position: int = 0,
        speech_end: int | None = None,
    ) -> tuple[float, MouthShape]:
        """Advance one frame.

        `chunk` is the frame's samples; `cues` those of the line on air at the frame's end and
        `position` how many of that line's samples have aired by then (its own sample count);
        `speech_end` where the line's speech ends and its pause begins. Without cues, and in
        the pause after the speech, the shape is OPEN and the envelope alone moves the mouth,
        so the lips settle shut the way they do after any sound instead of holding the last
        phoneme's shape.
        """
        openness = self._lips.update(chunk)
        after_speech = speech_end is not None and position >= speech_end
        shape = MouthShape.OPEN if after_speech else self._shape_at(cues, position)
        if shape == MouthShape.CLOSED or openness <= 0.0:
            return 0.0, MouthShape.CLOSED
        return openness, shape

    def _shape_at(self, cues: Sequence[MouthCue], position: int) -> MouthShape:
        if not cues:
            return MouthShape.OPEN
        if cues is not self._cues:
            self._cues = cues
            self._cue_samples = [round(cue.start * self._rate) for cue in cues]
        # The last cue starting at or before the frame's last sample of the line.
        index = bisect_left(self._cue_samples, position) - 1
        return cues[index].shape if index >= 0 else MouthShape.OPEN
