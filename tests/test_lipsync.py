"""The mouth follows the loudness of the audio and rests closed in silence."""

from __future__ import annotations

import numpy as np

from anchor.lipsync import LipTracker

RATE, FPS = 48000, 30
CHUNK = RATE // FPS


def _tone(level: float, frames: int) -> list[np.ndarray]:
    t = np.arange(CHUNK * frames) / RATE
    wave = (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return [wave[i * CHUNK : (i + 1) * CHUNK] for i in range(frames)]


def _silence(frames: int) -> list[np.ndarray]:
    return [np.zeros(CHUNK, dtype=np.float32) for _ in range(frames)]


def test_mouth_opens_on_speech_and_closes_fully_in_silence() -> None:
    lips = LipTracker(FPS)
    assert [lips.update(c) for c in _silence(5)] == [0.0] * 5
    loud = [lips.update(c) for c in _tone(0.3, 10)]
    assert loud[0] > 0.3, "attack should open the mouth within one frame"
    assert loud[-1] > 0.8
    quiet = [lips.update(c) for c in _silence(15)]
    assert all(b <= a for a, b in zip(quiet, quiet[1:], strict=False)), "release must not reopen"
    assert quiet[-1] == 0.0, "mouth must close completely in silence"


def test_louder_speech_opens_wider() -> None:
    soft, loud = LipTracker(FPS), LipTracker(FPS)
    soft_values = [soft.update(c) for c in _tone(0.02, 10)]
    loud_values = [loud.update(c) for c in _tone(0.3, 10)]
    assert 0.0 < soft_values[-1] < loud_values[-1]


def test_release_is_slower_than_attack() -> None:
    lips = LipTracker(FPS)
    for chunk in _tone(0.3, 10):
        lips.update(chunk)
    after_one_silent_frame = lips.update(_silence(1)[0])
    assert after_one_silent_frame > 0.5, "the mouth closes over a few frames, not at once"


def test_noise_below_the_floor_keeps_the_mouth_shut() -> None:
    lips = LipTracker(FPS)
    rng = np.random.default_rng(1)
    hiss = [(rng.standard_normal(CHUNK) * 0.002).astype(np.float32) for _ in range(20)]
    assert max(lips.update(c) for c in hiss) == 0.0
