"""Idle life for the host: blinks, breathing and a slow sway, as pure functions of the frame index.

Nothing here keeps state or reads a clock. The same (seed, frame index) always gives the same
pose, so a render can be repeated or skipped, and a recording made twice is identical.
Randomness comes from hashing (seed, slot) rather than from a running generator, which lets any
frame be computed on its own, in any order, without remembering the past.
"""

from __future__ import annotations

import math
from enum import IntEnum

_MASK64 = (1 << 64) - 1


def _unit(seed: int, *keys: int) -> float:
    """A uniform number in [0, 1) determined by `seed` and `keys` (a SplitMix64 finaliser)."""
    x = seed & _MASK64
    for key in keys:
        x = (x + 0x9E3779B97F4A7C15 + (key & _MASK64)) & _MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
        x ^= x >> 31
    return (x >> 11) / float(1 << 53)


class Eyelid(IntEnum):
    """How far the eyes are shut; doubles as the index of the eyelid sprite (0 = none)."""

    OPEN = 0
    HALF = 1
    CLOSED = 2


class Blinks:
    """Blinks every 2–6 s, ~150 ms each, now and then a double blink.

    Time is cut into slots of `mean_gap` seconds and each slot holds one blink at a random
    offset in its first `jitter` seconds; the gap between two blinks is therefore
    `mean_gap ± jitter` (2–6 s by default), like an attentive speaker's.
    """

    def __init__(
        self,
        fps: float,
        seed: int = 0,
        *,
        mean_gap: float = 4.0,
        jitter: float = 2.0,
        duration: float = 0.15,
        double_chance: float = 0.15,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        if not 0 <= jitter < mean_gap:
            raise ValueError("jitter must be in [0, mean_gap)")
        self._fps = fps
        self._seed = seed
        self._gap = mean_gap
        self._jitter = jitter
        self._double_chance = double_chance
        # At least three frames, so the lid is seen half-shut, shut, half-shut at any frame rate.
        self._frames = max(3, round(duration * fps))
        self._double_delay = self._frames + max(1, round(0.12 * fps))

    def eyelid(self, frame_index: int) -> Eyelid:
        slot = math.floor(frame_index / self._fps / self._gap)
        for candidate in (slot, slot - 1):
            for start in self._starts(candidate):
                offset = frame_index - start
                if 0 <= offset < self._frames:
                    return self._phase(offset)
        return Eyelid.OPEN

    def _starts(self, slot: int) -> tuple[int, ...]:
        t = slot * self._gap + self._jitter * _unit(self._seed, slot, 0)
        first = math.ceil(t * self._fps)
        if _unit(self._seed, slot, 1) < self._double_chance:
            return first, first + self._double_delay
        return (first,)

    def _phase(self, offset: int) -> Eyelid:
        position = (offset + 0.5) / self._frames
        return Eyelid.HALF if position < 0.25 or position > 0.75 else Eyelid.CLOSED


class Sway:
    """Breathing (a rise and fall of about 4.5 s) and a slow sideways lean about the neck.

    Both are in [-1, 1]; the lean mixes two incommensurate periods so it never visibly loops.
    Phases come from the seed, so two hosts on two channels do not move in lockstep.
    """

    BREATH_PERIOD = 4.6
    LEAN_PERIODS = (9.7, 15.3)

    def __init__(self, fps: float, seed: int = 0) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self._fps = fps
        self._phases = tuple(2 * math.pi * _unit(seed, 1000 + i) for i in range(3))

    def pose(self, frame_index: int) -> tuple[float, float]:
        """(breath, lean) at this frame: breath +1 = chest risen, lean +1 = crown to the right."""
        t = frame_index / self._fps
        breath = math.sin(2 * math.pi * t / self.BREATH_PERIOD + self._phases[0])
        slow, slower = self.LEAN_PERIODS
        lean = 0.65 * math.sin(2 * math.pi * t / slow + self._phases[1]) + 0.35 * math.sin(
            2 * math.pi * t / slower + self._phases[2]
        )
        return breath, lean
