"""Bring voice PCM to the stream's sample rate and shape.

Voices return audio at whatever rate their engine uses (espeak-ng: 22050 Hz) with the
engine's own silence around it. The stream runs at one rate, and the gap between sentences
must be decided by the show (a line's `pause_after`), not by how much silence a voice pads.
"""

from __future__ import annotations

import numpy as np
import soxr

_WINDOW_SECONDS = 0.01


def to_rate(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Mono float32 `pcm` resampled from `src_rate` to `dst_rate` (soxr, HQ).

    Returns the input itself (as float32) when the rates already match, so the common case
    costs nothing.
    """
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    samples = np.asarray(pcm, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono 1-D PCM, got shape {samples.shape}")
    if src_rate == dst_rate:
        return samples
    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    resampled = soxr.resample(samples, src_rate, dst_rate, quality="HQ")
    return np.asarray(resampled, dtype=np.float32)


def trim_silence(
    pcm: np.ndarray, rate: int, threshold_db: float = -45.0, keep: float = 0.05
) -> np.ndarray:
    """`pcm` without the leading and trailing silence, keeping `keep` seconds of margin.

    Loudness is measured as RMS over 10 ms windows against full scale, so a lone click does
    not count as speech and soft consonants at the edges are not clipped. Audio that never
    rises above `threshold_db` is all silence and comes back empty.
    """
    samples = np.asarray(pcm, dtype=np.float32)
    start, end = speech_bounds(samples, rate, threshold_db, keep)
    return samples[start:end]


def speech_bounds(
    pcm: np.ndarray, rate: int, threshold_db: float = -45.0, keep: float = 0.05
) -> tuple[int, int]:
    """The sample range `trim_silence` keeps; callers with timing data shift it by `start`."""
    samples = np.asarray(pcm, dtype=np.float32)
    if samples.size == 0:
        return 0, 0
    window = max(1, round(rate * _WINDOW_SECONDS))
    padded = np.zeros(-(-samples.size // window) * window, dtype=np.float32)
    padded[: samples.size] = samples
    rms = np.sqrt(np.mean(padded.reshape(-1, window).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > 10.0 ** (threshold_db / 20.0))
    if loud.size == 0:
        return 0, 0
    margin = round(keep * rate)
    start = max(0, int(loud[0]) * window - margin)
    end = min(samples.size, (int(loud[-1]) + 1) * window + margin)
    return start, end
