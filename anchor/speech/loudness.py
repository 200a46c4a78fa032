"""One loudness on air whatever voice speaks: −16 LUFS integrated, peaks under −1 dBFS.

Voices come at their own levels (espeak-ng at its volume setting, a neural voice as its model
was trained, a local server as it pleases), and a viewer who hears the host change voice on a
fallback should not reach for the volume. So every sentence is measured (ITU-R BS.1770 via
pyloudnorm) and brought to the stream's target, then its peaks are limited. The limit is
below −1 dB true peak (four times oversampled) because the stream's AAC encoder itself adds
to peaks: FFmpeg's aac at 128 kbit/s decodes a −1 dBTP sentence with peaks 0.3 dB higher
(at 64 kbit/s over 2 dB, so a low bitrate clips whatever is done here); a voice at full scale
was decoded at 1.026 on air. −1.5 dBTP keeps the decoded stream under −1 dBFS at 96 kbit/s
and above.

A sentence shorter than the 400 ms gating block has no gated integrated loudness; its one
block is then the whole sentence (ungated, which for a lone word is what the ear hears). The
gain is clamped (±12 dB by default) so that breath noise or a near-silent take is never blown
up to speech level, and a take below BS.1770's absolute gate (−70 LUFS) is left as it is.
"""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import soxr
from scipy.ndimage import minimum_filter1d, uniform_filter1d

DEFAULT_TARGET_LUFS = -16.0
DEFAULT_CEILING_DBTP = -1.5
DEFAULT_MAX_GAIN_DB = 12.0

_GATE_BLOCK_S = 0.4  # BS.1770's gating block
_MIN_MEASURED_S = 0.05  # below this there is no sentence to measure, only a click
_ABSOLUTE_GATE_LUFS = -70.0
_OVERSAMPLING = 4  # BS.1770 true peak: at least four times the rate
_HOLD_S = 0.02  # the limiter starts to duck this long before a peak and holds after it ...
_SMOOTH_S = 0.01  # ... and ramps the gain over this long, so it never clicks
# Between samples a pure tone rises at most 3 dB above its sample peak (at a quarter of the
# rate, sampled at ±45°), speech far less: below that no true-peak check is needed.
_NO_OVERSHOOT_BELOW = 10.0 ** (-3.0 / 20.0)
_PASSES = 3  # gain, limit, measure again: the limiter takes off a little loudness each time
_TOLERANCE_LU = 0.2


def true_peak_dbtp(pcm: np.ndarray, rate: int) -> float:
    """The peak of `pcm` between samples too, in dB true peak (−inf for silence)."""
    samples = np.asarray(pcm, dtype=np.float32)
    if samples.size == 0:
        return -math.inf
    oversampled = soxr.resample(samples, rate, rate * _OVERSAMPLING, quality="HQ")
    peak = float(max(np.max(np.abs(oversampled)), np.max(np.abs(samples))))
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


class LoudnessLeveller:
    """Brings mono float PCM at one rate to `target_lufs`, peaks under `ceiling_dbtp`."""

    def __init__(
        self,
        sample_rate: int,
        target_lufs: float = DEFAULT_TARGET_LUFS,
        *,
        ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
        max_gain_db: float = DEFAULT_MAX_GAIN_DB,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {sample_rate}")
        self._rate = sample_rate
        self._target = target_lufs
        self._ceiling = 10.0 ** (ceiling_dbtp / 20.0)
        self._max_gain_db = max_gain_db
        self._meter = pyloudnorm.Meter(sample_rate)

    def measure(self, pcm: np.ndarray) -> float:
        """Integrated loudness in LUFS; ungated for a sentence shorter than one gating block,
        −inf when there is too little to measure."""
        samples = np.asarray(pcm, dtype=np.float64)
        duration = samples.size / self._rate
        if duration < _MIN_MEASURED_S:
            return -math.inf
        meter = self._meter
        if duration < _GATE_BLOCK_S:  # one block, a sample short so float rounding fits it
            meter = pyloudnorm.Meter(self._rate, block_size=(samples.size - 1) / self._rate)
        return float(meter.integrated_loudness(samples))

    def level(self, pcm: np.ndarray) -> np.ndarray:
        """`pcm` at the target loudness (within the gain clamp), limited to the ceiling."""
        samples = np.asarray(pcm, dtype=np.float32)
        original = self.measure(samples)
        if not math.isfinite(original) or original < _ABSOLUTE_GATE_LUFS:
            return self.limit(samples)
        gain_db = self._clamp(self._target - original)
        for _ in range(_PASSES):
            leveled = self.limit(samples * np.float32(10.0 ** (gain_db / 20.0)))
            shortfall = self._target - self.measure(leveled)
            more = self._clamp(gain_db + shortfall)
            if abs(shortfall) <= _TOLERANCE_LU or more == gain_db:
                break
            gain_db = more
        return leveled

    def _clamp(self, gain_db: float) -> float:
        return min(self._max_gain_db, max(-self._max_gain_db, gain_db))

    def limit(self, pcm: np.ndarray) -> np.ndarray:
        """`pcm` with its peaks ducked smoothly under the ceiling, between samples too.

        The gain each sample needs is spread by a minimum over ±hold and then averaged over
        ±smooth: since hold ≥ smooth, every sample of the average around a peak already
        carries that peak's reduction, so the peak lands at or under the ceiling.
        """
        samples = np.asarray(pcm, dtype=np.float32)
        if samples.size == 0:
            return samples
        magnitude = np.abs(samples).astype(np.float64)
        if magnitude.max() > self._ceiling:
            needed = np.minimum(1.0, self._ceiling / np.maximum(magnitude, 1e-12))
            hold = 2 * round(_HOLD_S * self._rate) + 1
            smooth = 2 * round(_SMOOTH_S * self._rate) + 1
            gain = uniform_filter1d(minimum_filter1d(needed, hold, mode="nearest"), smooth)
            samples = np.clip(samples * gain, -self._ceiling, self._ceiling).astype(np.float32)
        if np.max(np.abs(samples)) < self._ceiling * _NO_OVERSHOOT_BELOW:
            return samples
        peak_db = true_peak_dbtp(samples, self._rate)
        ceiling_db = 20.0 * math.log10(self._ceiling)
        if peak_db > ceiling_db:  # an overshoot between samples: take the clip down by it
            samples = samples * np.float32(10.0 ** ((ceiling_db - peak_db) / 20.0) * 0.999)
        return samples.astype(np.float32, copy=False)
